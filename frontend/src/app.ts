// The Diagnosis tab: summary, notices, filters and the (progressively rendered) list of run cards.
import { Card, badge } from "./card";
import { ChangeLog, countedTitle } from "./changes";
import { fetchReport, SeriesCache } from "./data";
import { h, icon, plural, setAttr, setText, fmtInt } from "./dom";
import { compileRegex, Expansion, loadFilters, saveFilters, type Filters } from "./state";
import { rank, type Report, type RunGroup } from "./types";
import { SweepPanel, type RunSelection, type Sweep } from "./sweep";

const CHUNK = 50;
const POLL_MS = 30_000;
// While some runs are still being diagnosed: ask again soon. The server holds a request up to
// 10 s while the build goes on and answers the moment it is complete, so a short pause here
// only shortens the wait for the whole report (the request that starts a build is answered
// after 1 s with the first cards).
const PENDING_POLL_MS = 500;

export const RECOGNISED_NAMES = [
  "loss", "val_loss", "epoch_loss", "Loss/train", "Loss/val", "train_loss", "valid_loss",
  "accuracy", "val_accuracy", "epoch_accuracy", "acc", "Accuracy/train",
];

function code(text: string): HTMLElement {
  return h("code", null, text);
}

/** The sampling notice, with the per-tag limit this TensorBoard was started with. */
function sampledText(limit: number | undefined): HTMLElement {
  const kept = typeof limit === "number" && limit > 0 ? `at most ${fmtInt(limit)} points per scalar tag` : "a sample of the points of each scalar tag";
  return h(
    "p",
    null,
    icon("info"),
    ` This TensorBoard keeps ${kept} (--samples_per_plugin); some curves have that many points, so they may be sampled: a short spike or the exact step of a NaN can be missed. Start TensorBoard with `,
    code("--samples_per_plugin scalars=0"),
    " to keep every point.",
  );
}

export class App {
  private root: HTMLDivElement;
  private updated: HTMLSpanElement;
  private refreshBtn: HTMLButtonElement;
  private summary: HTMLParagraphElement;
  private fetchError: HTMLDivElement;
  private sampledNote: HTMLDivElement;
  private pendingNote: HTMLDivElement;
  private pendingTimer = 0;
  private trainOnlyNote: HTMLDivElement;
  private problems: HTMLDetailsElement;
  private problemsSummary: HTMLElement;
  private problemsList: HTMLUListElement;
  private filterBar: HTMLDivElement;
  private regexInput: HTMLInputElement;
  private regexError: HTMLDivElement;
  private sevSelect: HTMLSelectElement;
  private hideHealthy: HTMLInputElement;
  private shownLine: HTMLSpanElement;
  private empty: HTMLDivElement;
  private list: HTMLDivElement;
  private more: HTMLDivElement;
  private moreBtn: HTMLButtonElement;
  private sentinel: HTMLDivElement;

  private report: Report | null = null;
  private reportText = "";
  private filters: Filters = loadFilters();
  private filtered: RunGroup[] = [];
  private shown = CHUNK;
  private cards = new Map<string, Card>();
  private cache = new SeriesCache();
  private expansion = new Expansion();
  private inflight: Promise<void> | null = null;
  private lastFetch = 0;
  private trainOnlyEverywhere = false;
  private runSet: RunSelection | null = null; // "Across runs": the cards narrowed to these runs
  private sweep = new SweepPanel((selection) => ((this.runSet = selection), this.filtersChanged()));
  private changeLog = new ChangeLog();
  private notify: HTMLInputElement;

  constructor(private host: HTMLElement) {
    this.refreshBtn = h("button", { type: "button", class: "ld-btn", title: "Reload the diagnosis now" }, icon("refresh"), "Refresh");
    this.refreshBtn.addEventListener("click", () => void this.refresh());
    // Not a live region: it changes at every poll and a screen reader would announce each one.
    this.updated = h("span", { class: "ld-updated" }, "Loading…");
    this.summary = h("p", { class: "ld-summary", "aria-live": "polite" });
    this.fetchError = h("div", { class: "ld-notice ld-error-box", role: "alert", hidden: true });
    this.sampledNote = h("div", { class: "ld-notice", hidden: true });
    this.pendingNote = h("div", { class: "ld-notice ld-pending-note", hidden: true });
    this.trainOnlyNote = h(
      "div",
      { class: "ld-notice", hidden: true },
      h(
        "p",
        null,
        icon("info"),
        " Only training curves were found. Logging a validation loss too (for example ",
        code("val_loss"),
        " or ",
        code("Loss/val"),
        ") lets this tab tell overfitting, data problems and divergence apart from healthy training.",
      ),
    );
    this.problemsSummary = h("summary");
    this.problemsList = h("ul");
    this.problems = h("details", { class: "ld-problems", hidden: true }, this.problemsSummary, this.problemsList);

    // filters
    const rid = "ld-filter-regex";
    this.regexInput = h("input", {
      id: rid,
      class: "ld-input",
      type: "search",
      placeholder: "Filter runs (regex)",
      spellcheck: "false",
      autocomplete: "off",
      "aria-describedby": "ld-filter-error",
    });
    this.regexInput.value = this.filters.regex;
    this.regexInput.addEventListener("input", () => {
      this.filters.regex = this.regexInput.value;
      this.filtersChanged();
    });
    // Described by the input (aria-describedby), not an alert: it would fire at each keystroke.
    this.regexError = h("div", { class: "ld-filter-error", id: "ld-filter-error", hidden: true });
    this.sevSelect = h(
      "select",
      { id: "ld-filter-sev", class: "ld-select" },
      h("option", { value: "0" }, "All runs"),
      h("option", { value: "1" }, "Any finding (info and worse)"),
      h("option", { value: "2" }, "Warnings and errors"),
      h("option", { value: "3" }, "Errors only"),
    );
    this.sevSelect.value = String(this.filters.minSeverity);
    this.sevSelect.addEventListener("change", () => {
      this.filters.minSeverity = Number(this.sevSelect.value) || 0;
      this.filtersChanged();
    });
    this.notify = h("input", { type: "checkbox", id: "ld-notify" });
    this.notify.addEventListener("change", () => void this.notifyChanged());
    this.hideHealthy = h("input", { type: "checkbox", id: "ld-filter-healthy" });
    this.hideHealthy.checked = this.filters.hideHealthy;
    this.hideHealthy.addEventListener("change", () => {
      this.filters.hideHealthy = this.hideHealthy.checked;
      this.filtersChanged();
    });
    this.shownLine = h("span", { class: "ld-shown", role: "status" });
    this.filterBar = h(
      "div",
      { class: "ld-filters", role: "search", "aria-label": "Filter runs", hidden: true },
      h("div", { class: "ld-field" }, h("label", { for: rid, class: "ld-sr" }, "Filter runs by regular expression"), this.regexInput),
      h("div", { class: "ld-field" }, h("label", { for: "ld-filter-sev" }, "Severity"), this.sevSelect),
      h("label", { class: "ld-check", for: "ld-filter-healthy" }, this.hideHealthy, "Hide healthy runs"),
      h("label", { class: "ld-check", for: "ld-notify", title: "A browser notification when a run turns error while this tab is in the background" }, this.notify, "Notify me of new errors"),
      this.shownLine,
      this.regexError,
    );

    this.empty = h("div", { class: "ld-empty", hidden: true });
    this.list = h("div", { class: "ld-list", role: "list", "aria-label": "Run groups, worst first" });
    this.moreBtn = h("button", { type: "button", class: "ld-btn ld-btn-accent" });
    this.moreBtn.addEventListener("click", () => this.showMore());
    this.sentinel = h("div", { class: "ld-sentinel", "aria-hidden": "true" });
    this.more = h("div", { class: "ld-more", hidden: true }, this.moreBtn);

    this.root = h(
      "div",
      { class: "ld-root" },
      h("div", { class: "ld-header" }, h("h1", { class: "ld-title" }, "Training diagnosis"), h("div", { class: "ld-meta" }, this.updated, this.refreshBtn)),
      this.summary,
      this.fetchError,
      this.pendingNote,
      this.sampledNote,
      this.trainOnlyNote,
      this.problems,
      this.sweep.el,
      this.filterBar,
      this.empty,
      this.list,
      this.sentinel,
      this.more,
    );
    this.host.appendChild(this.root);

    if (typeof IntersectionObserver !== "undefined") {
      new IntersectionObserver(
        (entries) => {
          if (entries.some((e) => e.isIntersecting) && this.shown < this.filtered.length) this.showMore();
        },
        { rootMargin: "600px 0px" },
      ).observe(this.sentinel);
    }

    window.setInterval(() => {
      if (!document.hidden) void this.refresh();
    }, POLL_MS);
    const onFocus = () => {
      if (Date.now() - this.lastFetch > 2000) void this.refresh();
    };
    window.addEventListener("focus", onFocus);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) onFocus();
    });
    try {
      window.parent?.addEventListener("focus", onFocus);
    } catch {
      /* cross-origin parent */
    }
    const mq = window.matchMedia?.("(prefers-color-scheme: dark)");
    mq?.addEventListener?.("change", () => this.rebuildCharts());
    this.applyFilterControls();
  }

  /** Fetch the report and show it; `ready` (what the first render needs besides the report, such
   * as the logdir's name) is awaited alongside the request, not before it. */
  refresh(ready?: Promise<void>): Promise<void> {
    if (this.inflight) return this.inflight;
    this.lastFetch = Date.now();
    setAttr(this.refreshBtn, "aria-busy", "true");
    this.inflight = Promise.all([fetchReport(), ready])
      .then(([{ text, value }]) => {
        this.fetchError.hidden = true;
        const d = new Date();
        setText(this.updated, `Updated ${d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })}`);
        if (text !== this.reportText) {
          this.reportText = text;
          this.setReport(value);
        }
      })
      .catch((e: unknown) => {
        this.fetchError.hidden = false;
        this.fetchError.replaceChildren(
          h("p", null, icon("error"), ` Could not load the diagnosis: ${e instanceof Error ? e.message : String(e)}.`),
          h("p", null, this.report ? "Showing the last diagnosis that loaded; retrying every 30 s." : "Retrying every 30 s."),
        );
        if (!this.report) setText(this.updated, "Not loaded");
      })
      .finally(() => {
        this.inflight = null;
        setAttr(this.refreshBtn, "aria-busy", null);
      });
    return this.inflight;
  }

  private setReport(report: Report): void {
    const pending = report.pending?.count ?? 0;
    this.pendingNote.hidden = pending === 0;
    window.clearTimeout(this.pendingTimer);
    if (pending > 0) {
      setText(this.pendingNote, `Diagnosing ${plural(pending, "more run")}: the cards below are the runs diagnosed so far, worst first.`);
      this.pendingTimer = window.setTimeout(() => void this.refresh(), PENDING_POLL_MS);
      // Cards for the runs still being diagnosed say so (the first ones; all of them are counted above).
      const waiting = (report.pending?.runs ?? []).slice(0, CHUNK).map((run) => ({ run, status: "pending", findings: [], series: [] }));
      report = { ...report, runs: [...(report.runs ?? []), ...waiting] };
    }
    this.report = report;
    const runs = Array.isArray(report.runs) ? report.runs : [];
    const diagnosed = runs.filter((r) => r.status !== "pending");
    this.noteChanges(diagnosed);
    // summary
    const counts = { error: 0, warning: 0, ok: 0 };
    for (const r of diagnosed) {
      if (r.status === "error") counts.error++;
      else if (r.status === "warning") counts.warning++;
      else counts.ok++;
    }
    const attention = counts.error + counts.warning;
    if (diagnosed.length === 0) {
      this.summary.replaceChildren("No run diagnosed yet.");
    } else {
      const parts: Array<Node | string> = [h("span", { class: "ld-count" }, plural(diagnosed.length, "run")), " diagnosed · "];
      if (attention === 0) parts.push("none needs attention.");
      else {
        parts.push(h("span", { class: "ld-count" }, `${fmtInt(attention)} need${attention === 1 ? "s" : ""} attention`), ": ");
        if (counts.error) parts.push(h("span", { class: "ld-sev ld-sev-error" }, icon("error"), plural(counts.error, "error")));
        if (counts.error && counts.warning) parts.push(", ");
        if (counts.warning) parts.push(h("span", { class: "ld-sev ld-sev-warning" }, icon("warning"), plural(counts.warning, "warning")));
      }
      if (counts.ok) parts.push(attention ? " · " : "", h("span", { class: "ld-sev ld-sev-ok" }, icon("ok"), `${fmtInt(counts.ok)} healthy`));
      this.summary.replaceChildren(...parts);
    }
    this.sampledNote.hidden = report.sampled !== true;
    this.sweep.update((report as Report & { sweep?: Sweep | null }).sweep);
    if (report.sampled === true) this.sampledNote.replaceChildren(sampledText(report.sampling?.limit));

    // only training curves anywhere?
    const withCurves = runs.filter((r) => (r.series ?? []).length > 0);
    this.trainOnlyEverywhere = withCurves.length > 0 && withCurves.every((r) => !(r.series ?? []).some((s) => s.role === "val"));
    this.trainOnlyNote.hidden = !this.trainOnlyEverywhere;

    // problems
    const problems = Array.isArray(report.problems) ? report.problems : [];
    this.problems.hidden = problems.length === 0;
    setText(this.problemsSummary, `Could not use ${plural(problems.length, "curve")}`);
    const shownProblems = problems.slice(0, 500);
    this.problemsList.replaceChildren(
      ...shownProblems.map((p) =>
        h("li", null, `${p.run ?? "?"} / ${p.tag ?? "?"}`, h("span", { class: "ld-reason" }, p.reason ? ` — ${p.reason}` : "")),
      ),
      ...(problems.length > shownProblems.length ? [h("li", null, `… and ${fmtInt(problems.length - shownProblems.length)} more`)] : []),
    );

    // drop cards of runs that are gone
    const names = new Set(runs.map((r) => r.run));
    for (const [name, card] of this.cards)
      if (!names.has(name)) {
        card.destroy();
        card.el.remove();
        this.cards.delete(name);
      }
    this.renderList();
  }

  /** Marks on changed cards, the title count of newly failed runs, and the opt-in notification. */
  private noteChanges(runs: RunGroup[]): void {
    const turned = this.changeLog.update(runs);
    const count = this.changeLog.newlyError.size;
    document.title = countedTitle(document.title, count);
    try {
      if (window.parent && window.parent !== window) window.parent.document.title = countedTitle(window.parent.document.title, count);
    } catch {
      /* a cross-origin parent keeps its title */
    }
    if (turned.length && this.notify.checked && document.hidden && "Notification" in window && Notification.permission === "granted") {
      const names = turned.map((r) => r.run).slice(0, 3).join(", ");
      new Notification(`Loss Doctor: ${turned.length === 1 ? "a run" : `${turned.length} runs`} turned error`, { body: names });
    }
  }

  private async notifyChanged(): Promise<void> {
    if (!this.notify.checked || !("Notification" in window)) return;
    if (Notification.permission === "default") {
      try {
        await Notification.requestPermission();
      } catch {
        /* not allowed in this frame */
      }
    }
    if (Notification.permission !== "granted") this.notify.checked = false;
  }

  private filtersChanged(): void {
    saveFilters(this.filters);
    this.shown = CHUNK;
    this.applyFilterControls();
    this.renderList();
  }

  private applyFilterControls(): void {
    const c = compileRegex(this.filters.regex);
    if (c.ok) {
      this.regexError.hidden = true;
      setAttr(this.regexInput, "aria-invalid", null);
    } else {
      this.regexError.hidden = false;
      this.regexError.replaceChildren(icon("error"), `${c.error}. Showing all runs.`);
      setAttr(this.regexInput, "aria-invalid", "true");
    }
  }

  private renderList(): void {
    const report = this.report;
    if (!report) return;
    const runs = Array.isArray(report.runs) ? report.runs : [];
    const c = compileRegex(this.filters.regex);
    const test = c.ok ? c.test : () => true;
    const { minSeverity, hideHealthy } = this.filters;
    this.filtered = runs.filter((r) => {
      if (this.runSet && !this.runSet.runs.has(r.run)) return false;
      if (hideHealthy && r.status !== "error" && r.status !== "warning") return false;
      if (minSeverity > 0) {
        let lvl = 0;
        for (const f of r.findings ?? []) lvl = Math.max(lvl, rank(String(f.severity)));
        if (lvl < minSeverity) return false;
      }
      return test(r.run);
    });
    const total = runs.length;
    setText(this.shownLine, total === 0 ? "" : this.filtered.length === total ? `Showing all ${plural(total, "run")}` : `Showing ${fmtInt(this.filtered.length)} of ${plural(total, "run")}`);
    this.renderEmpty(report, runs);

    const visible = this.filtered.slice(0, Math.max(this.shown, CHUNK));
    const keep = new Set(visible.map((r) => r.run));
    for (const [name, card] of this.cards)
      if (!keep.has(name)) {
        card.destroy();
        card.el.remove();
        this.cards.delete(name);
      }
    let ref: ChildNode | null = this.list.firstChild;
    for (const g of visible) {
      let card = this.cards.get(g.run);
      if (card) {
        card.showTrainOnlyNote = !this.trainOnlyEverywhere;
        card.update(g);
      } else {
        card = new Card(g, this.cache, this.expansion, !this.trainOnlyEverywhere);
        this.cards.set(g.run, card);
      }
      card.markChange(this.changeLog.changes.get(g.run) ?? null);
      if (card.el === ref) ref = ref.nextSibling;
      else this.list.insertBefore(card.el, ref);
    }
    while (ref) {
      const next: ChildNode | null = ref.nextSibling;
      ref.remove();
      ref = next;
    }
    const remaining = this.filtered.length - visible.length;
    this.more.hidden = remaining <= 0;
    setText(this.moreBtn, remaining > 0 ? `Show ${fmtInt(Math.min(CHUNK, remaining))} more (${fmtInt(remaining)} not shown)` : "");
  }

  private showMore(): void {
    this.shown = Math.min(this.filtered.length, Math.max(this.shown, CHUNK) + CHUNK);
    this.renderList();
  }

  private renderEmpty(report: Report, runs: RunGroup[]): void {
    const e = this.empty;
    const state = runs.length === 0 ? this.emptyCause(report) : this.filtered.length === 0 ? "filtered" : "";
    if (e.dataset.state === state && state !== "filtered" && state !== "unrecognised" && state !== "unreadable") {
      e.hidden = state === "";
      return;
    }
    e.dataset.state = state;
    e.hidden = state === "";
    this.filterBar.hidden = runs.length === 0;
    if (state === "noscalars") {
      e.replaceChildren(
        h("h2", null, "No scalar data yet"),
        h("p", null, "TensorBoard has found no scalar summaries in this log directory, so there is nothing to diagnose yet."),
        h(
          "p",
          null,
          "Log your training loss as a scalar, for example ",
          code("tf.summary.scalar(\"loss\", loss, step=step)"),
          ", Keras' ",
          code("TensorBoard"),
          " callback, or PyTorch's ",
          code("writer.add_scalar(\"Loss/train\", loss, step)"),
          ". This tab checks again every 30 seconds.",
        ),
      );
    } else if (state === "unrecognised") {
      const names = RECOGNISED_NAMES;
      const ignored = (report.ignored ?? []).map((x) => (typeof x === "string" ? x : `${x.run ?? "?"} / ${x.tag ?? "?"}`));
      const items: Array<Node> = [
        h("h2", null, "No loss or metric curve recognised"),
        h("p", null, "There are scalar summaries, but none is a learning curve, so nothing was diagnosed: none is named like a loss or an accuracy-like metric, or those that are were left out on purpose (a metric's best value so far, mixed precision's loss scale, a GAN's generator and discriminator losses)."),
        h("p", null, "Recognised names include: ", ...names.flatMap((n, i) => [i ? ", " : "", code(n)]), ", and accuracy-like metrics (", code("acc"), ", ", code("accuracy"), ", ", code("top_k_accuracy"), "…), with prefixes such as ", code("epoch_"), " or ", code("val_"), " and suffixes such as ", code("/train"), " or ", code("/val"), "."),
      ];
      if (ignored.length) {
        items.push(h("p", null, `Scalars seen (${fmtInt(Math.max(report.ignored_count ?? 0, ignored.length))}):`));
        items.push(h("ul", null, ...ignored.slice(0, 20).map((t) => h("li", null, t)), ignored.length > 20 ? h("li", null, "…") : null));
      }
      e.replaceChildren(...items);
    } else if (state === "unreadable") {
      const problems = (report.problems ?? []).map((p) => [p.run, p.tag].filter(Boolean).join(" / ") + (p.reason ? `: ${p.reason}` : ""));
      e.replaceChildren(
        h("h2", null, "No curve could be read"),
        h("p", null, "The log directory holds event files, but none could be used:"),
        h("ul", null, ...problems.slice(0, 20).map((t) => h("li", null, t)), problems.length > 20 ? h("li", null, "…") : null),
      );
    } else if (state === "filtered") {
      const clear = h("button", { type: "button", class: "ld-btn ld-btn-accent" }, "Clear filters");
      clear.addEventListener("click", () => {
        this.filters = { regex: "", minSeverity: 0, hideHealthy: false };
        this.regexInput.value = "";
        this.sevSelect.value = "0";
        this.hideHealthy.checked = false;
        this.sweep.clear();
        this.filtersChanged();
      });
      e.replaceChildren(h("h2", null, "No run matches the filters"), h("p", null, `${plural(runs.length, "run")} hidden by the filters.`), clear);
    } else {
      e.replaceChildren();
    }
  }

  /** Why no run is shown: scalars that name no metric, files that could not be read, or nothing yet. */
  private emptyCause(report: Report): "unrecognised" | "unreadable" | "noscalars" {
    if (Array.isArray(report.ignored) && report.ignored.length > 0) return "unrecognised";
    if (Array.isArray(report.problems) && report.problems.length > 0) return "unreadable";
    return "noscalars";
  }

  rebuildCharts(): void {
    // Colours come from CSS variables read at build time: rebuild charts on a colour-scheme change.
    for (const c of this.cards.values()) c.rebuildCharts();
  }
}

export { badge };
