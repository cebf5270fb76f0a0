// UI state that outlives a data refresh. Filters also outlive a reload (localStorage);
// expanded cards/findings live in memory for the life of the tab.

export interface Filters {
  regex: string; // run-name filter, a case-insensitive regular expression like TensorBoard's run filter
  minSeverity: number; // 0 all, 1 info+, 2 warning+, 3 error
  hideHealthy: boolean;
}

const KEY = "tb_lossdoctor.filters.v1";

export const DEFAULT_FILTERS: Filters = { regex: "", minSeverity: 0, hideHealthy: false };

export function loadFilters(): Filters {
  try {
    const raw = window.localStorage.getItem(KEY);
    if (!raw) return { ...DEFAULT_FILTERS };
    const v = JSON.parse(raw) as Partial<Filters>;
    return {
      regex: typeof v.regex === "string" ? v.regex : "",
      minSeverity: typeof v.minSeverity === "number" && v.minSeverity >= 0 && v.minSeverity <= 3 ? v.minSeverity : 0,
      hideHealthy: v.hideHealthy === true,
    };
  } catch {
    return { ...DEFAULT_FILTERS };
  }
}

export function saveFilters(f: Filters): void {
  try {
    window.localStorage.setItem(KEY, JSON.stringify(f));
  } catch {
    /* storage may be disabled (sandboxed iframe, private mode): filters then last for the session */
  }
}

export type CompiledFilter = { ok: true; test: (name: string) => boolean } | { ok: false; error: string };

export function compileRegex(src: string): CompiledFilter {
  if (!src) return { ok: true, test: () => true };
  try {
    const re = new RegExp(src, "i");
    return { ok: true, test: (name) => re.test(name) };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

/** Expanded state: explicit user choices override the default (problem cards open, healthy ones closed). */
export class Expansion {
  private cards = new Map<string, boolean>();
  private findings = new Set<string>();

  cardOpen(run: string, defaultOpen: boolean): boolean {
    const v = this.cards.get(run);
    return v === undefined ? defaultOpen : v;
  }
  setCard(run: string, open: boolean): void {
    this.cards.set(run, open);
  }
  findingOpen(key: string): boolean {
    return this.findings.has(key);
  }
  setFinding(key: string, open: boolean): void {
    if (open) this.findings.add(key);
    else this.findings.delete(key);
  }
}
