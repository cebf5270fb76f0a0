// What changed since the page was loaded: per run, its verdict and events as first seen, and
// the runs that have newly turned error (for the title count and the opt-in notification).
import type { RunGroup } from "./types";

export interface RunChange {
  from: string; // "still_learning", "died", ... as first seen on this page
  to: string;
  at: Date;
}

/** "overfitting", or "died: nan" when an event ended the run; events are added after "+". */
export function describe(run: RunGroup): string {
  const findings = run.findings ?? [];
  const events = findings.filter((f) => f.code !== run.verdict).map((f) => f.code);
  const head = run.verdict ?? (events.length ? "died" : "-");
  return events.length ? `${head} + ${events.join(", ")}` : head;
}

export class ChangeLog {
  private firstSeen = new Map<string, { text: string; status: string }>();
  readonly changes = new Map<string, RunChange>();
  readonly newlyError = new Set<string>();

  /** Record a report; returns the runs that turned error in this update (not seen as error before). */
  update(runs: RunGroup[]): RunGroup[] {
    const turned: RunGroup[] = [];
    for (const run of runs) {
      const text = describe(run);
      const first = this.firstSeen.get(run.run);
      if (!first) {
        this.firstSeen.set(run.run, { text, status: String(run.status) });
        continue;
      }
      const previous = this.changes.get(run.run)?.to ?? first.text;
      if (text !== previous) this.changes.set(run.run, { from: first.text, to: text, at: new Date() });
      if (text === first.text) this.changes.delete(run.run);
      if (run.status === "error" && first.status !== "error" && !this.newlyError.has(run.run)) {
        this.newlyError.add(run.run);
        turned.push(run);
      }
    }
    return turned;
  }
}

/** Prefix a title with the count of runs that newly turned error: "(2) TensorBoard". */
export function countedTitle(title: string, count: number): string {
  const bare = title.replace(/^\(\d+\) /, "");
  return count > 0 ? `(${count}) ${bare}` : bare;
}
