// Fetching: the report and the points of one curve. URLs are relative to the plugin's <base>.
import type { Report, SeriesData } from "./types";

export class HttpError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

async function getJson<T>(url: string, signal?: AbortSignal): Promise<{ text: string; value: T }> {
  const res = await fetch(url, { signal, headers: { Accept: "application/json" }, credentials: "same-origin" });
  return readJson<T>(res);
}

async function readJson<T>(res: Response): Promise<{ text: string; value: T }> {
  const text = await res.text();
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try {
      const body = JSON.parse(text) as { error?: unknown; message?: unknown };
      const m = body.error ?? body.message;
      if (typeof m === "string") msg += `: ${m}`;
      else if (m && typeof m === "object" && typeof (m as { message?: unknown }).message === "string")
        msg += `: ${(m as { message: string }).message}`;
    } catch {
      /* not JSON */
    }
    throw new HttpError(res.status, msg);
  }
  return { text, value: JSON.parse(text) as T };
}

let lastReport: { etag: string; text: string; value: Report } | null = null;

/** The report; a poll that finds nothing new gets 304 (no body) and reuses the last one. */
export async function fetchReport(signal?: AbortSignal): Promise<{ text: string; value: Report }> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (lastReport) headers["If-None-Match"] = lastReport.etag;
  // partial=1: on a large logdir the runs diagnosed so far come first, the rest on the next poll.
  const res = await fetch("./report?partial=1", { signal, headers, credentials: "same-origin", cache: "no-store" });
  if (res.status === 304 && lastReport) return lastReport;
  const { text, value } = await readJson<Report>(res); // throws HttpError with the server's message
  const etag = res.headers.get("ETag");
  lastReport = etag ? { etag, text, value } : null;
  return { text, value };
}

/** Curve points with the non-finite markers decoded; null when absent. */
export interface Curve {
  steps: number[];
  values: number[]; // NaN / ±Infinity preserved
}

function decode(v: number | string | null): number {
  if (typeof v === "number") return v;
  if (v === "Infinity" || v === "inf") return Infinity;
  if (v === "-Infinity" || v === "-inf") return -Infinity;
  return NaN;
}

export class SeriesCache {
  private cache = new Map<string, Promise<Curve>>();

  /** `points` (from the report) is part of the key: a curve that grew is fetched again.
   * `axis`: the curve whose step axis the diagnosis placed this one on (another step unit). */
  get(run: string, tag: string, points?: number, axis?: { run: string; tag: string }): Promise<Curve> {
    const key = [run, tag, points ?? "", axis?.run ?? "", axis?.tag ?? ""].join("\u0000");
    let p = this.cache.get(key);
    if (p) {
      // LRU: move to the end
      this.cache.delete(key);
      this.cache.set(key, p);
    } else {
      const params: Record<string, string> = { run, tag };
      if (axis && typeof axis.run === "string" && typeof axis.tag === "string") {
        params.axis_run = axis.run;
        params.axis_tag = axis.tag;
      }
      const url = "./series?" + new URLSearchParams(params).toString();
      p = getJson<SeriesData>(url).then(({ value }) => {
        const steps = Array.isArray(value.steps) ? value.steps.map(Number) : [];
        const raw = Array.isArray(value.values) ? value.values : [];
        const n = Math.min(steps.length, raw.length);
        const pairs: Array<[number, number]> = [];
        for (let i = 0; i < n; i++) pairs.push([steps[i], decode(raw[i])]);
        pairs.sort((a, b) => a[0] - b[0]);
        return { steps: pairs.map((p) => p[0]), values: pairs.map((p) => p[1]) };
      });
      p.catch(() => this.cache.delete(key)); // do not cache failures
      this.cache.set(key, p);
      while (this.cache.size > 200) this.cache.delete(this.cache.keys().next().value as string);
    }
    return p;
  }
}
