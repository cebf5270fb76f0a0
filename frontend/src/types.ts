// The report contract (version 1, see the README's "What it diagnoses"). Everything optional is read defensively.

export type Severity = "info" | "warning" | "error";
export type Status = "ok" | "warning" | "error";

export interface SeriesRef {
  run: string;
  tag: string;
  role?: string; // "train" | "val" | ...
  metric?: string; // "loss" | "accuracy" | ...
  points?: number;
  notes?: string[]; // how the reader cleaned the curve (restarts, several values per step)
  axis?: { run: string; tag: string }; // counted in another step unit: drawn on this curve's axis
}

export interface Finding {
  code: string;
  severity: Severity | string;
  title: string;
  summary?: string;
  metric?: string;
  tags?: string[];
  step?: number | null;
  step_range?: [number, number] | null;
  evidence?: Record<string, unknown>;
  advice?: string[];
  confidence?: number;
}

export interface RunGroup {
  run: string;
  status: Status | string;
  /** The run's one trend verdict, or null when a nan/blowup ended the run. */
  verdict?: string | null;
  series?: SeriesRef[];
  findings?: Finding[];
}

export interface Problem {
  run?: string;
  tag?: string;
  reason?: string;
}

export interface Report {
  version?: number;
  generated_at?: string;
  runs?: RunGroup[];
  problems?: Problem[];
  sampled?: boolean;
  sampling?: { limit?: number; hint?: string }; // the plugin's per-tag point budget in force
  pending?: { count: number; runs?: string[] }; // run groups still being diagnosed (partial report)
  // Optional extras the UI uses when present (not yet in the v1 contract):
  ignored?: Array<{ run?: string; tag?: string } | string>; // scalar tags seen but not recognised
  ignored_count?: number; // how many (`ignored` lists the first ones)
}

/** Response of GET ./series?run=&tag= (non-finite values as the strings "NaN", "Infinity", "-Infinity"). */
export interface SeriesData {
  run: string;
  tag: string;
  steps: number[];
  values: Array<number | string | null>;
}

export const SEVERITY_RANK: Record<string, number> = { ok: 0, info: 1, warning: 2, error: 3 };

export function rank(s: string | undefined): number {
  return s !== undefined && s in SEVERITY_RANK ? SEVERITY_RANK[s] : 0;
}
