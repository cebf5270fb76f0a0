// "Across runs": the report's `sweep` at the top of the tab. The sweep's own sentences, then one
// compact table per sweep family (hyperparameter value x verdict); a count, a value or a finding
// is a button that filters the cards to those runs. Everything from the report goes in as text.
import { h, plural, setAttr, setText } from "./dom";

export interface SweepFinding {
  kind: string;
  hyperparameter: string;
  text: string;
  runs: string[];
}

export interface SweepTableRow {
  hyperparameter: string;
  label: string;
  runs: string[];
  cells: Record<string, string[]>;
}

export interface SweepFamily {
  name?: string;
  runs: string[];
  hyperparameters: string[];
  table: { outcomes: string[]; severity?: Record<string, string>; rows: SweepTableRow[] };
}

export interface Sweep {
  runs?: Array<{ run: string; outcome: string; failed: boolean }>;
  hyperparameters?: Array<{ name: string }>;
  families?: SweepFamily[];
  findings?: SweepFinding[];
  findings_count?: number;
}

/** The runs the cards are narrowed to, and what was clicked to get there. */
export interface RunSelection {
  key: string;
  label: string;
  runs: Set<string>;
}

const CSS = `
.ld-sweep { border: 1px solid var(--ld-border); border-radius: 4px; background: var(--ld-card); padding: 8px 16px; margin-bottom: 16px; }
.ld-sweep h2 { font-size: 16px; line-height: 24px; font-weight: 500; margin: 0; }
.ld-sweep-meta { color: var(--ld-muted); font-size: 12px; margin: 0 0 8px; }
.ld-sweep-findings { margin: 0 0 8px; padding-left: 20px; }
.ld-sweep-findings li { margin: 4px 0; overflow-wrap: anywhere; }
.ld-sweep-findings .ld-btn { min-height: 24px; padding: 0 8px; font-size: 12px; margin-left: 8px; vertical-align: 1px; }
.ld-sweep-family { margin: 8px 0 0; overflow-x: auto; }
.ld-sweep-table { border-collapse: collapse; font-size: 12px; }
.ld-sweep-table caption { text-align: left; color: var(--ld-muted); padding: 4px 0; caption-side: top; overflow-wrap: anywhere; }
.ld-sweep-table th, .ld-sweep-table td { border: 1px solid var(--ld-border); padding: 0; text-align: center; }
.ld-sweep-table thead th { padding: 2px 8px; font-weight: 500; white-space: nowrap; }
.ld-sweep-table tbody th { text-align: left; font-weight: 400; }
.ld-sweep-table button { width: 100%; min-height: 24px; min-width: 32px; padding: 2px 8px; background: transparent; border: 0; cursor: pointer; font: inherit; color: inherit; }
.ld-sweep-table tbody th button { text-align: left; overflow-wrap: anywhere; }
.ld-sweep-table button:hover { background: var(--ld-card-hover); }
.ld-sweep-table button[aria-pressed="true"], .ld-sweep-findings .ld-btn[aria-pressed="true"] { outline: 2px solid var(--ld-accent); outline-offset: -2px; font-weight: 600; }
.ld-sweep-active { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; margin: 8px 0 0; font-size: 12px; }
.ld-sweep-active[hidden] { display: none; }
`;

function injectCss(): void {
  if (document.getElementById("lossdoctor-sweep-styles")) return;
  const style = document.createElement("style");
  style.id = "lossdoctor-sweep-styles";
  style.textContent = CSS;
  document.head.appendChild(style);
}

export class SweepPanel {
  readonly el: HTMLElement;
  private meta: HTMLParagraphElement;
  private findings: HTMLUListElement;
  private tables: HTMLDivElement;
  private active: HTMLDivElement;
  private activeText: HTMLSpanElement;
  private selected: RunSelection | null = null;
  private buttons = new Map<string, HTMLButtonElement>();

  /** `onSelect` gets the runs to show, or null for every run. */
  constructor(private onSelect: (selection: RunSelection | null) => void) {
    injectCss();
    this.meta = h("p", { class: "ld-sweep-meta" });
    this.findings = h("ul", { class: "ld-sweep-findings" });
    this.tables = h("div");
    this.activeText = h("span", { role: "status" });
    const clear = h("button", { type: "button", class: "ld-btn ld-btn-accent" }, "Show all runs");
    clear.addEventListener("click", () => this.select(null));
    this.active = h("div", { class: "ld-sweep-active", hidden: true }, this.activeText, clear);
    this.el = h(
      "section",
      { class: "ld-sweep", "aria-labelledby": "ld-sweep-title", hidden: true },
      h("h2", { id: "ld-sweep-title" }, "Across runs"),
      this.meta,
      this.findings,
      this.tables,
      this.active,
    );
  }

  /** Show the report's sweep (hidden when it has none). A selection whose runs are gone is dropped. */
  update(sweep: Sweep | null | undefined): void {
    const families = sweep && Array.isArray(sweep.families) ? sweep.families : [];
    this.el.hidden = families.length === 0;
    this.buttons.clear();
    if (!sweep || families.length === 0) {
      this.findings.replaceChildren();
      this.tables.replaceChildren();
      if (this.selected) this.select(null);
      return;
    }
    const names = (sweep.hyperparameters ?? []).map((p) => p.name);
    setText(this.meta, `${plural((sweep.runs ?? []).length, "run")} compared by ${plural(names.length, "hyperparameter")}: ${names.join(", ")}`);
    const findings = Array.isArray(sweep.findings) ? sweep.findings : [];
    this.findings.replaceChildren(
      ...(findings.length
        ? findings.map((f, i) => h("li", null, f.text, this.button(`f${i}`, `Show ${f.runs.length}`, f.text, f.runs, "ld-btn")))
        : [h("li", null, "No setting separates the verdicts cleanly; the table shows them by value.")]),
    );
    this.tables.replaceChildren(...families.map((fam, i) => this.table(fam, i)));
    const known = new Set(families.flatMap((f) => f.runs));
    if (this.selected && ![...this.selected.runs].some((r) => known.has(r))) this.select(null);
    else this.mark();
  }

  private table(fam: SweepFamily, index: number): HTMLElement {
    const outcomes = fam.table?.outcomes ?? [];
    const severity = fam.table?.severity ?? {};
    const where = fam.name ? ` under ${fam.name}` : "";
    const head = h(
      "tr",
      null,
      h("th", { scope: "col" }, "hyperparameter = value"),
      ...outcomes.map((o) => h("th", { scope: "col", class: `ld-sev-${severity[o] === "info" ? "ok" : severity[o] ?? "ok"}` }, o)),
    );
    const body = (fam.table?.rows ?? []).map((row, r) => {
      const label = `${row.hyperparameter} = ${row.label}`;
      return h(
        "tr",
        null,
        h("th", { scope: "row" }, this.button(`t${index}.${r}`, label, label, row.runs)),
        ...outcomes.map((o) => {
          const runs = row.cells?.[o] ?? [];
          return h("td", null, runs.length ? this.button(`t${index}.${r}.${o}`, String(runs.length), `${label}: ${o}`, runs) : "");
        }),
      );
    });
    return h(
      "div",
      { class: "ld-sweep-family" },
      h("table", { class: "ld-sweep-table" }, h("caption", null, `Verdicts by value, ${plural(fam.runs.length, "run")}${where}`), h("thead", null, head), h("tbody", null, ...body)),
    );
  }

  private button(key: string, text: string, label: string, runs: string[], cls?: string): HTMLButtonElement {
    const b = h("button", { type: "button", class: cls, "aria-pressed": "false", title: `Show only the ${plural(runs.length, "run")} of ${label}`, "data-key": key }, text);
    b.addEventListener("click", () => this.select(this.selected?.key === key ? null : { key, label, runs: new Set(runs) }));
    this.buttons.set(key, b);
    return b;
  }

  private select(selection: RunSelection | null): void {
    this.selected = selection;
    this.mark();
    this.onSelect(selection);
  }

  private mark(): void {
    for (const [key, b] of this.buttons) setAttr(b, "aria-pressed", this.selected?.key === key ? "true" : "false");
    this.active.hidden = !this.selected;
    setText(this.activeText, this.selected ? `Showing the ${plural(this.selected.runs.size, "run")} of ${this.selected.label}.` : "");
  }

  /** Forget the selection (the tab's "Clear filters"). */
  clear(): void {
    if (this.selected) this.select(null);
  }
}
