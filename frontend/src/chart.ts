// The chart under an expanded finding: the curves involved (training and validation together),
// the key step marked, the step range shaded, a log-scale toggle and a hover readout.
import uPlot from "uplot";
import { HttpError, type Curve, type SeriesCache } from "./data";
import { fmtInt, fmtNum, h, setAttr, setText } from "./dom";
import type { Finding, RunGroup, SeriesRef } from "./types";

const MAX_SERIES = 8;
const HEIGHT = 240;

function roleOrder(role: string | undefined): number {
  return role === "train" ? 0 : role === "val" ? 1 : 2;
}

/** Resolve a finding's curves: the tags it names plus the other curves of the same metric. */
export function involvedSeries(group: RunGroup, finding: Finding): SeriesRef[] {
  const all = group.series ?? [];
  const byKey = new Map<string, SeriesRef>();
  for (const s of all) byKey.set(s.run + ":" + s.tag, s);
  const out: SeriesRef[] = [];
  const seen = new Set<string>();
  const add = (s: SeriesRef) => {
    const k = s.run + "\u0000" + s.tag;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(s);
    }
  };
  for (const t of finding.tags ?? []) {
    const s = byKey.get(t);
    if (s) add(s);
    else {
      // Not among the group's series: split at the last ':' (tags rarely contain one; run names may).
      const i = t.lastIndexOf(":");
      if (i > 0) add({ run: t.slice(0, i), tag: t.slice(i + 1) });
    }
  }
  const metric = finding.metric ?? out.find((s) => s.metric)?.metric;
  if (metric) for (const s of all) if (s.metric === metric) add(s);
  if (out.length === 0) for (const s of all) add(s);
  return out
    .map((s, i) => ({ s, i }))
    .sort((a, b) => roleOrder(a.s.role) - roleOrder(b.s.role) || a.i - b.i)
    .map((x) => x.s)
    .slice(0, MAX_SERIES);
}

/** Log-axis ticks: powers of ten, plus 2x and 5x when the range spans few decades. */
function logSplits(_u: uPlot, _axis: number, min: number, max: number): number[] {
  if (!(min > 0) || !(max > min)) return [min, max];
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const mults = hi - lo <= 2 ? [1, 2, 5] : [1];
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) for (const m of mults) {
    const v = m * Math.pow(10, e);
    if (v >= min * 0.999 && v <= max * 1.001) out.push(Number(v.toPrecision(12)));
  }
  return out.length ? out : [min, max];
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

const EXTRA_COLORS = ["#7b1fa2", "#00897b", "#5d4037", "#c2185b", "#455a64", "#689f38"];

function roleLabel(s: SeriesRef): string {
  if (s.role === "train") return "training";
  if (s.role === "val") return "validation";
  return s.role || "curve";
}

export class Chart {
  readonly el: HTMLDivElement;
  private tools: HTMLDivElement;
  private logBtn: HTMLButtonElement;
  private note: HTMLSpanElement;
  private readout: HTMLDivElement;
  private plotBox: HTMLDivElement;
  private legend: HTMLDivElement;
  private msg: HTMLDivElement;
  private plot: uPlot | null = null;
  private curves: Array<{ ref: SeriesRef; curve: Curve }> = [];
  private log = false;
  private loading = 0;
  private resize: ResizeObserver | null = null;
  private lastWidth = 0;
  private destroyed = false;

  constructor(
    private group: RunGroup,
    private finding: Finding,
    private cache: SeriesCache,
  ) {
    this.logBtn = h("button", { type: "button", class: "ld-btn", "aria-pressed": "false", title: "Logarithmic y axis" }, "Log scale");
    this.logBtn.addEventListener("click", () => {
      this.log = !this.log;
      setAttr(this.logBtn, "aria-pressed", String(this.log));
      this.build();
    });
    this.note = h("span", { class: "ld-chart-legend-note" });
    this.tools = h("div", { class: "ld-chart-tools" }, this.logBtn, this.note);
    this.readout = h("div", { class: "ld-readout", "aria-live": "off" });
    this.plotBox = h("div", { class: "ld-chart" });
    this.legend = h("div", { class: "ld-chart-legend" });
    this.msg = h("div", { class: "ld-chart-msg", role: "status" }, "Loading curves…");
    this.el = h("div", { class: "ld-chart-box" }, this.tools, this.readout, this.plotBox, this.legend, this.msg);
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => {
        const w = this.plotBox.clientWidth;
        if (this.plot && w > 0 && Math.abs(w - this.lastWidth) > 1) {
          this.lastWidth = w;
          this.plot.setSize({ width: w, height: HEIGHT });
        } else if (!this.plot && w > 0 && this.curves.length) {
          this.build();
        }
      });
      this.resize.observe(this.plotBox);
    }
  }

  /** New report data for this finding: keep the chart, re-fetch points (curves may have grown). */
  update(group: RunGroup, finding: Finding): void {
    this.group = group;
    this.finding = finding;
    void this.load();
  }

  async load(): Promise<void> {
    const refs = involvedSeries(this.group, this.finding);
    const ticket = ++this.loading;
    if (refs.length === 0) {
      this.showMessage("This finding names no curve to draw.");
      return;
    }
    if (!this.plot) this.showMessage("Loading curves…");
    const results = await Promise.allSettled(refs.map((r) => this.cache.get(r.run, r.tag, r.points, r.axis)));
    if (this.destroyed || ticket !== this.loading) return;
    const curves: Array<{ ref: SeriesRef; curve: Curve }> = [];
    let firstError: unknown = null;
    results.forEach((r, i) => {
      if (r.status === "fulfilled" && r.value.steps.length > 0) curves.push({ ref: refs[i], curve: r.value });
      else if (r.status === "rejected" && firstError === null) firstError = r.reason;
    });
    if (curves.length === 0) {
      if (firstError instanceof HttpError && firstError.status === 404 && /^HTTP 404(: not found)?$/i.test(firstError.message)) {
        this.showMessage("Curve points are not available from this server (no series route: HTTP 404). The diagnosis above still holds.");
      } else if (firstError) {
        this.showMessage(`Could not load the curve points: ${firstError instanceof Error ? firstError.message : String(firstError)}`);
      } else {
        this.showMessage("The curves have no points yet.");
      }
      return;
    }
    this.curves = curves;
    const missing = refs.length - curves.length;
    this.msg.hidden = true;
    this.tools.hidden = this.readout.hidden = this.plotBox.hidden = this.legend.hidden = false;
    setText(this.msg, "");
    this.build(missing);
  }

  private showMessage(text: string): void {
    this.msg.hidden = false;
    this.tools.hidden = this.readout.hidden = this.plotBox.hidden = this.legend.hidden = true;
    setText(this.msg, text);
    this.destroyPlot();
    this.curves = [];
    this.legend.replaceChildren();
    setText(this.readout, "");
    setText(this.note, "");
  }

  private destroyPlot(): void {
    if (this.plot) {
      this.plot.destroy();
      this.plot = null;
    }
  }

  /** (Re)creates the uPlot instance from the loaded curves (on load, log toggle, colour scheme change). */
  build(missing = 0): void {
    if (this.destroyed || this.curves.length === 0) return;
    const width = this.plotBox.clientWidth;
    if (width <= 0) return; // not laid out yet (hidden); the ResizeObserver builds it when shown
    // Keep the box's height while the canvas is replaced, so the page never shrinks (which would
    // clamp the scroll position) during a refresh.
    this.plotBox.style.minHeight = `${this.plotBox.offsetHeight}px`;
    this.destroyPlot();
    this.lastWidth = width;

    const log = this.log;
    let nonFinite = 0;
    let nonPositive = 0;
    const badSteps: number[] = [];
    const tables: uPlot.AlignedData[] = this.curves.map(({ curve }) => {
      const ys: Array<number | null> = curve.values.map((v, k) => {
        if (!Number.isFinite(v)) {
          nonFinite++;
          if (badSteps.length < 5000) badSteps.push(curve.steps[k]);
          return null;
        }
        if (log && v <= 0) {
          nonPositive++;
          return null;
        }
        return v;
      });
      return [curve.steps, ys] as unknown as uPlot.AlignedData;
    });
    // null (non-finite) stays a gap; undefined (no point at that step in this curve) is bridged.
    const data = uPlot.join(tables, tables.map(() => [1]));

    const train = cssVar("--ld-train", "#f57c00");
    const val = cssVar("--ld-val", "#1976d2");
    const axis = cssVar("--ld-chart-axis", "#616161");
    const grid = cssVar("--ld-chart-grid", "rgba(0,0,0,0.08)");
    const shade = cssVar("--ld-shade", "rgba(245,124,0,0.13)");
    const marker = cssVar("--ld-marker", "#c62828");
    let extra = 0;
    const styles = this.curves.map(({ ref }) => {
      if (ref.role === "train") return { stroke: train, dash: undefined as number[] | undefined };
      if (ref.role === "val") return { stroke: val, dash: [6, 4] };
      return { stroke: EXTRA_COLORS[extra++ % EXTRA_COLORS.length], dash: [2, 3] };
    });

    const step = typeof this.finding.step === "number" ? this.finding.step : null;
    const range = Array.isArray(this.finding.step_range) && this.finding.step_range.length === 2 ? this.finding.step_range : null;
    const labels = this.curves.map(({ ref }) => `${roleLabel(ref)} ${ref.tag}`);

    const readout = this.readout;
    const idle = step !== null ? `Hover the chart to read values. Key step ${fmtInt(step)}.` : "Hover the chart to read values.";
    setText(readout, idle);

    const decorate: uPlot.Plugin = {
      hooks: {
        drawAxes: [
          (u: uPlot) => {
            if (!range) return;
            const { left, top, width: w, height: hh } = u.bbox;
            let x0 = u.valToPos(Math.min(range[0], range[1]), "x", true);
            let x1 = u.valToPos(Math.max(range[0], range[1]), "x", true);
            x0 = Math.max(left, Math.min(left + w, x0));
            x1 = Math.max(left, Math.min(left + w, x1));
            const ctx = u.ctx;
            ctx.save();
            ctx.fillStyle = shade;
            ctx.fillRect(x0, top, Math.max(x1 - x0, 2 * uPlot.pxRatio), hh);
            ctx.restore();
          },
        ],
        draw: [
          (u: uPlot) => {
            // Non-finite points: small downward triangles along the top edge.
            if (!badSteps.length) return;
            const { left, top, width: w } = u.bbox;
            const px = uPlot.pxRatio;
            const ctx = u.ctx;
            ctx.save();
            ctx.fillStyle = marker;
            let last = -Infinity;
            for (const s of badSteps) {
              const x = u.valToPos(s, "x", true);
              if (x < left || x > left + w || x - last < 3 * px) continue;
              last = x;
              ctx.beginPath();
              ctx.moveTo(x - 3 * px, top);
              ctx.lineTo(x + 3 * px, top);
              ctx.lineTo(x, top + 5 * px);
              ctx.closePath();
              ctx.fill();
            }
            ctx.restore();
          },
          (u: uPlot) => {
            if (step === null) return;
            const { left, top, width: w, height: hh } = u.bbox;
            const x = u.valToPos(step, "x", true);
            if (x < left - 1 || x > left + w + 1) return;
            const ctx = u.ctx;
            const px = uPlot.pxRatio;
            ctx.save();
            ctx.strokeStyle = marker;
            ctx.lineWidth = 1.5 * px;
            ctx.setLineDash([4 * px, 3 * px]);
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + hh);
            ctx.stroke();
            ctx.setLineDash([]);
            ctx.fillStyle = marker;
            ctx.font = `${11 * px}px Roboto, Arial, sans-serif`;
            ctx.textAlign = "left";
            ctx.textBaseline = "alphabetic";
            const label = `key step ${fmtInt(step)}`;
            const tw = ctx.measureText(label).width;
            const tx = x + 4 * px + tw > left + w ? x - 4 * px - tw : x + 4 * px;
            ctx.fillText(label, tx, top + 18 * px);
            ctx.restore();
          },
        ],
        setCursor: [
          (u: uPlot) => {
            const i = u.cursor.idx;
            if (i === null || i === undefined) {
              setText(readout, idle);
              return;
            }
            const parts = [`step ${fmtInt(u.data[0][i] as number)}`];
            for (let s = 1; s < u.data.length; s++) {
              // This curve may have no point at this step (validation is often logged less often):
              // show its nearest point, with that point's step.
              const ys = u.data[s];
              let j = i;
              for (let d = 1; ys[j] === undefined && d < ys.length; d++) {
                if (i - d >= 0 && ys[i - d] !== undefined) j = i - d;
                else if (i + d < ys.length && ys[i + d] !== undefined) j = i + d;
                else if (i - d < 0 && i + d >= ys.length) break;
              }
              const v = ys[j];
              if (v === undefined) continue;
              const x = u.data[0][j] as number;
              const shown = fmtNum(v === null ? this.rawValue(s - 1, x) : (v as number));
              parts.push(`${labels[s - 1]}: ${shown}${j !== i ? ` (step ${fmtInt(x)})` : ""}`);
            }
            setText(readout, parts.join("   "));
          },
        ],
      },
    };

    const xs = data[0] as number[];
    const opts: uPlot.Options = {
      width,
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 6 } },
      scales: {
        x: {
          time: false,
          range: (_u, min, max) => {
            let lo = min;
            let hi = max;
            if (step !== null) {
              lo = Math.min(lo, step);
              hi = Math.max(hi, step);
            }
            if (xs.length && lo === hi) hi = lo + 1;
            return [lo, hi];
          },
        },
        y: log ? { distr: 3, log: 10 } : { auto: true },
      },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, values: (_u, vals) => vals.map((v) => fmtInt(v)) },
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          size: 60,
          values: (_u, vals) => vals.map((v) => fmtNum(v)),
          ...(log ? { splits: logSplits } : {}),
        },
      ],
      series: [
        { label: "step" },
        ...this.curves.map(({ ref }, i) => ({
          label: labels[i] || ref.tag,
          stroke: styles[i].stroke,
          width: 1.5,
          dash: styles[i].dash,
          spanGaps: false,
          points: { show: false },
        })),
      ],
      plugins: [decorate],
    };
    this.plot = new uPlot(opts, data, this.plotBox);
    this.plotBox.style.minHeight = "";
    const canvas = this.plotBox.querySelector("canvas");
    if (canvas) {
      canvas.setAttribute("role", "img");
      canvas.setAttribute(
        "aria-label",
        `Chart of ${labels.join(", ")}${step !== null ? `; key step ${fmtInt(step)}` : ""}${range ? `; range ${fmtInt(range[0])} to ${fmtInt(range[1])} shaded` : ""}`,
      );
    }

    // Legend (text, line style and colour: colour is never the only signal).
    const items = this.curves.map(({ ref }, i) =>
      h(
        "span",
        null,
        h("span", { class: "ld-swatch" + (styles[i].dash ? " ld-swatch-dashed" : ""), style: `border-top-color:${styles[i].stroke}` }),
        `${roleLabel(ref)}: ${ref.run} / ${ref.tag}`,
      ),
    );
    if (step !== null) items.push(h("span", null, h("span", { class: "ld-swatch ld-swatch-dashed", style: `border-top-color:${marker}` }), `key step ${fmtInt(step)}`));
    if (range) items.push(h("span", null, `shaded: steps ${fmtInt(range[0])}–${fmtInt(range[1])}`));
    if (badSteps.length) items.push(h("span", { style: `color:${marker}` }, "▼ non-finite value (NaN/Inf)"));
    this.legend.replaceChildren(...items);

    const notes: string[] = [];
    if (nonFinite) notes.push(`${fmtInt(nonFinite)} non-finite value${nonFinite === 1 ? "" : "s"} (NaN/Inf) not drawn`);
    if (nonPositive) notes.push(`${fmtInt(nonPositive)} value${nonPositive === 1 ? "" : "s"} ≤ 0 hidden on the log scale`);
    if (missing) notes.push(`${missing} curve${missing === 1 ? "" : "s"} could not be loaded`);
    notes.push("drag to zoom, double-click to reset");
    setText(this.note, notes.join(" · "));
  }

  private rawValue(curveIndex: number, step: number): number {
    const c = this.curves[curveIndex]?.curve;
    if (!c) return NaN;
    const i = c.steps.indexOf(step);
    return i >= 0 ? c.values[i] : NaN;
  }

  destroy(): void {
    this.destroyed = true;
    this.resize?.disconnect();
    this.destroyPlot();
  }
}
