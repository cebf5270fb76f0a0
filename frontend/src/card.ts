// One card per run group, and one row per finding, both updated in place on refresh.
import { Chart } from "./chart";
import type { SeriesCache } from "./data";
import { fmtInt, h, icon, plural, setAttr, setText } from "./dom";
import type { Expansion } from "./state";
import type { RunChange } from "./changes";
import type { Finding, RunGroup } from "./types";

let uid = 0;
const nextId = (p: string) => `ld-${p}-${++uid}`;

const STATUS_TEXT: Record<string, string> = { ok: "Healthy", info: "Info", warning: "Warning", error: "Error", pending: "Diagnosing…" };

export function badge(sev: string, text?: string): HTMLSpanElement {
  const s = sev in STATUS_TEXT ? sev : "info";
  return h("span", { class: `ld-badge ld-badge-${s}` }, icon(s), text ?? STATUS_TEXT[s]);
}

function updateBadge(el: HTMLSpanElement, sev: string): void {
  const s = sev in STATUS_TEXT ? sev : "info";
  if (el.dataset.sev === s) return;
  el.dataset.sev = s;
  el.className = `ld-badge ld-badge-${s}`;
  el.replaceChildren(icon(s), STATUS_TEXT[s]);
}

/** Stable identity of a finding within its group across refreshes. */
function findingKeys(findings: Finding[]): string[] {
  const seen = new Map<string, number>();
  return findings.map((f) => {
    const base = `${f.code}\u0000${f.metric ?? ""}`;
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    return `${base}\u0000${n}`;
  });
}

export class FindingView {
  readonly el: HTMLLIElement;
  private head: HTMLButtonElement;
  private sevBadge: HTMLSpanElement;
  private title: HTMLSpanElement;
  private summary: HTMLSpanElement;
  private step: HTMLSpanElement;
  private detail: HTMLDivElement;
  private chartSlot: HTMLDivElement;
  private adviceTitle: HTMLDivElement;
  private advice: HTMLUListElement;
  private chart: Chart | null = null;
  private stale = false;
  private json = "";

  constructor(
    private group: RunGroup,
    private finding: Finding,
    private readonly key: string,
    private readonly cache: SeriesCache,
    private readonly expansion: Expansion,
  ) {
    const detailId = nextId("finding");
    this.sevBadge = badge(String(finding.severity));
    this.title = h("span", { class: "ld-finding-title" });
    this.summary = h("span", { class: "ld-finding-summary" });
    this.step = h("span", { class: "ld-finding-step" });
    this.head = h(
      "button",
      { type: "button", class: "ld-finding-head", "aria-expanded": "false", "aria-controls": detailId },
      icon("chevron", "icon ld-chevron"),
      h("span", { class: "ld-finding-main" }, this.title, this.summary, this.step),
      this.sevBadge,
    );
    this.chartSlot = h("div");
    this.adviceTitle = h("div", { class: "ld-advice-title" }, "What to try");
    this.advice = h("ul", { class: "ld-advice" });
    this.detail = h("div", { class: "ld-finding-detail", id: detailId, hidden: true }, this.chartSlot, this.adviceTitle, this.advice);
    this.el = h("li", { class: "ld-finding" }, this.head, this.detail);
    this.el.dataset.code = finding.code;
    this.head.addEventListener("click", () => this.setOpen(!this.isOpen(), true));
    this.update(group, finding);
    if (this.expansion.findingOpen(this.stateKey())) this.setOpen(true, false);
  }

  private stateKey(): string {
    return this.group.run + "\u0000" + this.key;
  }

  private isOpen(): boolean {
    return this.head.getAttribute("aria-expanded") === "true";
  }

  private setOpen(open: boolean, user: boolean): void {
    if (user) this.expansion.setFinding(this.stateKey(), open);
    setAttr(this.head, "aria-expanded", String(open));
    this.detail.hidden = !open;
    if (open) {
      if (!this.chart) {
        this.chart = new Chart(this.group, this.finding, this.cache);
        this.chartSlot.appendChild(this.chart.el);
        void this.chart.load();
      } else if (this.stale) {
        this.chart.update(this.group, this.finding);
      } else {
        this.chart.build();
      }
      this.stale = false;
    }
  }

  update(group: RunGroup, finding: Finding): void {
    this.group = group;
    const json = JSON.stringify(finding) + JSON.stringify(group.series ?? []);
    const changed = json !== this.json;
    this.json = json;
    this.finding = finding;
    updateBadge(this.sevBadge, String(finding.severity));
    setText(this.title, finding.title || finding.code);
    setText(this.summary, finding.summary ?? "");
    const parts: string[] = [];
    if (typeof finding.step === "number") parts.push(`key step ${fmtInt(finding.step)}`);
    if (Array.isArray(finding.step_range) && finding.step_range.length === 2)
      parts.push(`steps ${fmtInt(finding.step_range[0])}–${fmtInt(finding.step_range[1])}`);
    if (typeof finding.confidence === "number") parts.push(`confidence ${Math.round(finding.confidence * 100)}%`);
    parts.push(`code ${finding.code}`);
    setText(this.step, parts.join(" · "));
    const advice = finding.advice ?? [];
    const cur = Array.from(this.advice.children).map((li) => li.textContent);
    if (cur.length !== advice.length || cur.some((t, i) => t !== advice[i])) {
      this.advice.replaceChildren(...advice.map((a) => h("li", null, a)));
    }
    this.adviceTitle.hidden = advice.length === 0;
    if (changed && this.chart) {
      if (this.isOpen()) this.chart.update(group, finding);
      else this.stale = true;
    }
  }

  rebuildChart(): void {
    if (this.chart && this.isOpen()) this.chart.build();
  }

  destroy(): void {
    this.chart?.destroy();
    this.chart = null;
  }
}

export class Card {
  readonly el: HTMLElement;
  private head: HTMLButtonElement;
  private statusBadge: HTMLSpanElement;
  private runName: HTMLSpanElement;
  private verdict: HTMLSpanElement;
  private since: HTMLSpanElement;
  private changeMark: HTMLSpanElement;
  private counts: HTMLSpanElement;
  private body: HTMLDivElement;
  private seriesLine: HTMLParagraphElement;
  private note: HTMLParagraphElement;
  private list: HTMLUListElement;
  private healthy: HTMLParagraphElement;
  private findings = new Map<string, FindingView>();
  private json = "";
  private built = false;

  constructor(
    private group: RunGroup,
    private readonly cache: SeriesCache,
    private readonly expansion: Expansion,
    /** Per-card "only a training curve" note (off when a page-wide notice already says it). */
    public showTrainOnlyNote: boolean,
  ) {
    const bodyId = nextId("card");
    this.statusBadge = badge("ok");
    this.runName = h("span", { class: "ld-run" });
    this.verdict = h("span", { class: "ld-verdict" });
    this.since = h("span", { class: "ld-since" });
    this.changeMark = h("span", { class: "ld-new", hidden: true });
    this.counts = h("span", { class: "ld-card-counts" });
    this.head = h(
      "button",
      { type: "button", class: "ld-card-head", "aria-expanded": "false", "aria-controls": bodyId },
      icon("chevron", "icon ld-chevron"),
      this.statusBadge,
      this.runName,
      this.changeMark,
      this.verdict,
      this.since,
      this.counts,
    );
    this.seriesLine = h("p", { class: "ld-series-list" });
    this.note = h("p", { class: "ld-note", hidden: true });
    this.list = h("ul", { class: "ld-findings" });
    this.healthy = h("p", { class: "ld-note", hidden: true }, icon("ok"), "No problems found in these curves.");
    this.body = h("div", { class: "ld-card-body", id: bodyId, hidden: true }, this.seriesLine, this.note, this.healthy, this.list);
    this.el = h("section", { class: "ld-card", role: "listitem" }, this.head, this.body);
    this.head.addEventListener("click", () => {
      const open = this.head.getAttribute("aria-expanded") !== "true";
      this.expansion.setCard(this.group.run, open);
      this.setOpen(open);
    });
    this.update(group);
  }

  private defaultOpen(): boolean {
    return this.group.status !== "ok";
  }

  private setOpen(open: boolean): void {
    setAttr(this.head, "aria-expanded", String(open));
    this.body.hidden = !open;
    if (open && !this.built) this.buildBody();
  }

  /** Apply (possibly changed) report data for this run group; returns nothing, keeps DOM nodes. */
  update(group: RunGroup): void {
    this.group = group;
    const json = JSON.stringify(group) + (this.showTrainOnlyNote ? "1" : "0");
    if (json !== this.json) {
      this.json = json;
      const status = String(group.status);
      this.el.className = `ld-card ld-card-status-${status in { ok: 1, warning: 1, error: 1 } ? status : "ok"}`;
      this.el.dataset.run = group.run;
      this.el.setAttribute("aria-label", `${group.run}: ${STATUS_TEXT[status] ?? status}`);
      updateBadge(this.statusBadge, status);
      setText(this.runName, displayName(group.run));
      setText(this.verdict, verdictLine(group));
      setText(this.since, sinceLine(group));
      const nf = group.findings?.length ?? 0;
      const ns = group.series?.length ?? 0;
      setText(this.counts, `${plural(nf, "finding")} · ${plural(ns, "curve")}`);
      if (this.built) this.buildBody();
    }
    // A card the reader is looking at stays open when new data arrives, even if its status
    // improved; a card that gets worse opens. Explicit choices (clicks) always win.
    const showing = this.head.getAttribute("aria-expanded") === "true";
    this.setOpen(this.expansion.cardOpen(group.run, showing || this.defaultOpen()));
  }

  private buildBody(): void {
    this.built = true;
    const g = this.group;
    const series = g.series ?? [];
    setText(
      this.seriesLine,
      series.length
        ? "Curves: " +
            series
              .map((s) => `${s.run} / ${s.tag}${s.role ? ` (${s.role})` : ""}${s.notes?.length ? ` [${s.notes.join("; ")}]` : ""}`)
              .join(", ")
        : "No curves.",
    );
    const hasVal = series.some((s) => s.role === "val");
    const hasTrain = series.some((s) => s.role === "train");
    if (this.showTrainOnlyNote && hasTrain && !hasVal) {
      this.note.hidden = false;
      this.note.replaceChildren(
        icon("info"),
        "Only a training curve: a validation curve (for example val_loss) would also let this tab detect overfitting, data problems and divergence.",
      );
    } else {
      this.note.hidden = true;
    }
    const findings = verdictFirst(g.findings ?? [], g.verdict);
    this.healthy.hidden = findings.length > 0;
    const keys = findingKeys(findings);
    const next = new Map<string, FindingView>();
    findings.forEach((f, i) => {
      let v = this.findings.get(keys[i]);
      if (v) v.update(g, f);
      else v = new FindingView(g, f, keys[i], this.cache, this.expansion);
      next.set(keys[i], v);
    });
    for (const [k, v] of this.findings) if (!next.has(k)) {
      v.destroy();
      v.el.remove();
    }
    this.findings = next;
    // order in place
    let ref: ChildNode | null = this.list.firstChild;
    for (const v of next.values()) {
      if (v.el === ref) ref = ref.nextSibling;
      else this.list.insertBefore(v.el, ref);
    }
  }

  rebuildCharts(): void {
    for (const f of this.findings.values()) f.rebuildChart();
  }

  /** "New" mark: what changed since the page was loaded (null: nothing). */
  markChange(change: RunChange | null): void {
    this.changeMark.hidden = change === null;
    this.el.classList.toggle("ld-card-changed", change !== null);
    if (change) {
      const at = change.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
      setText(this.changeMark, `New: ${change.from} → ${change.to}`);
      setAttr(this.changeMark, "title", `Changed at ${at}, since this page was loaded`);
    }
  }

  destroy(): void {
    for (const f of this.findings.values()) f.destroy();
    this.findings.clear();
  }
}

/** The card header's verdict: the verdict finding's title, or what ended the run. */
export function verdictLine(group: RunGroup): string {
  const findings = group.findings ?? [];
  const verdict = group.verdict ? findings.find((f) => f.code === group.verdict) : undefined;
  if (verdict) return verdict.title;
  const fatal = findings.find((f) => f.severity === "error");
  return fatal ? `Run ended: ${fatal.title}` : "";
}

/** The verdict first (what the reader wants), then the events in the report's order. */
export function verdictFirst(findings: Finding[], verdict: string | null | undefined): Finding[] {
  return [...findings.filter((f) => f.code === verdict), ...findings.filter((f) => f.code !== verdict)];
}

/** "since step 2,300 · 5 evaluations", from the verdict's own evidence. */
export function sinceLine(group: RunGroup): string {
  const verdict = (group.findings ?? []).find((f) => f.code === group.verdict);
  const held = verdict?.evidence?.holds_since as { step?: number; evaluations?: number } | undefined;
  if (!held || typeof held.step !== "number") return "";
  const n = typeof held.evaluations === "number" ? ` · ${plural(held.evaluations, "evaluation")}` : "";
  return `since step ${fmtInt(held.step)}${n}`;
}

let logdirName = "";

/** The logdir's folder name (TensorBoard's `data_location`), shown for the run group "." */
export function setLogdirName(location: string): void {
  const parts = location.replace(/[\\/]+$/, "").split(/[\\/]/);
  logdirName = parts[parts.length - 1] ?? "";
}

/** A run group's name as shown: "." (the logdir itself) is named after its folder. */
export function displayName(run: string): string {
  return run === "." && logdirName ? `${logdirName} (the logdir itself)` : run;
}
