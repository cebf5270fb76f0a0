"""Across runs: which hyperparameter separates the runs that fail from the ones that work.

`analyse(runs)` is a pure function of the report's run entries (each with its `verdict`,
`status`, `findings`, and the `hparams` / `hparam_sources` / `validation_best` the engine
attached) and returns the report's `sweep` object, or None when there is nothing to compare
(no hyperparameter, or no two runs of one sweep).

What counts as a sweep, and what may be claimed (assumptions, all conservative):
- A **family** is a set of runs linked by a hyperparameter they declare (in their name or in an
  HParams record), seeds excluded: runs that declare nothing, or nothing in common, are never
  compared (a logdir of unrelated experiments gets no claim). A learning rate read off a curve
  is a column of a family, never the link that makes one.
- A **split** is claimed when the runs having a hyperparameter (at least `MIN_RUNS`) are cut
  cleanly by it: for a number, every run on one side of a threshold has the outcome and none on
  the other; for a category, every value's runs all have it or all lack it, with some value
  holding two runs or more (a category of single runs restates the verdicts). Outcomes are one
  verdict or fatal event (`nan`, `blowup`, `overfitting`...), "diverged, blew up or went NaN"
  together, or "failed" (an error or warning verdict, or a fatal event). The same cut is claimed
  once, with its most specific outcome.
- A **trend** is claimed when, over at least `MIN_TREND_VALUES` values of a number, the step at
  which validation is best, or the best validation value, moves strictly one way (medians per
  value, runs that died left out).
- Every claim says how many runs back it and how often a cut this clean would arise by chance
  (the share of relabellings of the same runs that are as clean), and names the other settings
  that separate the same runs (**confounded**: the runs differ in several settings at once).
- **Seeds** (or runs repeating one setting): how many repeats of a setting share a verdict.
- **Baseline**: with a category value called `original`, `baseline`, `default`..., what each
  other value changed against it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from tb_lossdoctor.codes import FATAL_EVENTS, SEVERITY
from tb_lossdoctor.hparams import (
    LR_KEYS,
    SOURCE_CURVE,
    HParams,
    Value,
    format_value,
    is_seed_key,
)

MIN_RUNS = 3  # runs behind a split
MIN_TREND_VALUES = 3  # distinct values behind a trend
MAX_BINS = 8  # a number with more distinct values is shown in quantile bins in the table
MAX_FINDINGS = 24
UNSTABLE = ("nan", "blowup", "diverging")
BASELINE_WORDS = ("original", "baseline", "base", "default", "vanilla", "control", "reference")
# Outcome order in the table: what ends a run, then verdicts by severity, then the rest.
OUTCOME_ORDER = ("nan", "blowup") + tuple(
    sorted((c for c in SEVERITY if c not in ("nan", "blowup", "spikes")),
           key=lambda c: ("error", "warning", "info").index(SEVERITY[c]))
)
VERBS = {
    "nan": "went NaN", "blowup": "blew up", "diverging": "diverged", "not_learning": "did not learn",
    "oscillation": "oscillated", "overfitting": "overfit", "data_problem": "showed a data problem",
    "plateau": "plateaued", "slow_convergence": "converged slowly",
    "still_learning": "were still learning", "converged": "converged",
    "too_early": "were too short to judge",
}


@dataclass
class Row:
    """One run group as the sweep sees it."""

    run: str
    outcome: str  # its verdict, or the fatal event that ended it
    failed: bool
    values: HParams
    sources: Dict[str, str]
    best: Optional[Mapping] = None  # validation_best


@dataclass
class Column:
    """One hyperparameter over a family's runs."""

    name: str
    kind: str  # "number" | "bool" | "text"
    values: Dict[str, Value]  # run -> value
    sources: List[str] = field(default_factory=list)

    @property
    def derived(self) -> bool:
        return self.sources == [SOURCE_CURVE]

    def text(self, run: str, missing: str = "-") -> str:
        """The run's value as every view prints it (`missing` when the run lacks it)."""
        if run not in self.values:
            return missing
        cache = self.__dict__.setdefault("_text", {})
        if run not in cache:
            cache[run] = format_value(self.values[run])
        return cache[run]

    def key(self, run: str):
        """A value that sorts (numbers) or compares (categories)."""
        return self.values[run] if self.kind == "number" else self.text(run)


@dataclass(frozen=True)
class OutcomeClass:
    name: str
    codes: Tuple[str, ...]  # empty for "failed"

    def member(self, row: Row) -> bool:
        return row.failed if self.name == "failed" else row.outcome in self.codes


# -- entry point -------------------------------------------------------------------------------


def analyse(runs: Sequence[Mapping], name_words: Optional[Mapping[str, HParams]] = None) -> Optional[dict]:
    """The `sweep` object of a report, or None (see the module docstring). `name_words`: the
    settings a set of names states in plain words ({run: {"variant": ...}}, see
    `hparams.free_word_hparams`), added to the runs' own `hparams` where those lack the key."""
    rows = [r for r in (_row(run, (name_words or {}).get(str(run.get("run")))) for run in runs) if r is not None]
    families = [f for f in find_families(rows) if len(f) >= 2]
    out_families, findings, columns_by_name = [], [], {}
    for family in families:
        columns = family_columns(family)
        if not any(not c.derived for c in columns):
            continue
        out_families.append({"name": family_name([r.run for r in family]), "runs": [r.run for r in family],
                             "hyperparameters": [c.name for c in columns],
                             "table": outcome_table(family, columns)})
        for c in columns:
            merged = columns_by_name.setdefault(c.name, Column(c.name, c.kind, {}, []))
            merged.values.update(c.values)
            merged.sources = sorted(set(merged.sources) | set(c.sources))
            if merged.kind != c.kind:
                merged.kind = "text"
        findings.extend(family_findings(family, columns))
    if not out_families:
        return None
    in_sweep = {run for f in out_families for run in f["runs"]}
    rows_in = [r for r in rows if r.run in in_sweep]
    columns = sorted(columns_by_name.values(), key=lambda c: (c.derived, c.name))
    varied = {(run, name) for f in out_families for run in f["runs"] for name in f["hyperparameters"]}
    for c in columns:  # a run's value only where the run is in a family that varies it
        c.values = {run: v for run, v in c.values.items() if (run, c.name) in varied}
    findings.sort(key=_finding_rank)
    return {
        "runs": [{"run": r.run, "outcome": r.outcome, "failed": r.failed} for r in rows_in],
        "hyperparameters": [
            {"name": c.name, "type": c.kind, "sources": c.sources,
             "values": {run: c.values[run] for run in sorted(c.values)}}
            for c in columns
        ],
        "families": out_families,
        "findings": findings[:MAX_FINDINGS],
        "findings_count": len(findings),
    }


def family_name(runs: Sequence[str]) -> str:
    """What a family's run names share at the start, cut at a separator (`tf_hw04_`,
    `keras_lr_optimizer/`); "" when nothing."""
    prefix = runs[0]
    for run in runs[1:]:
        while not run.startswith(prefix):
            prefix = prefix[:-1]
    cut = prefix.rfind("/") if "/" in prefix else max(prefix.rfind(c) for c in "_-. ")
    return prefix[:cut + 1] if cut >= 0 else ""


def outcome_of(run: Mapping) -> str:
    """The run's verdict, or the fatal event that ended it ("-" when it has neither)."""
    if run.get("verdict"):
        return str(run["verdict"])
    for f in run.get("findings") or []:
        if f.get("code") in FATAL_EVENTS:
            return str(f["code"])
    return "-"


def is_failure(outcome: str) -> bool:
    """A fatal event, or a verdict of error or warning severity."""
    return outcome in FATAL_EVENTS or SEVERITY.get(outcome) in ("error", "warning")


def _row(run: Mapping, words: Optional[HParams] = None) -> Optional[Row]:
    values = dict(run.get("hparams") or {})
    sources = dict(run.get("hparam_sources") or {})
    for key, value in (words or {}).items():
        values.setdefault(key, value)
    outcome = outcome_of(run)
    if not values or outcome == "-":
        return None
    return Row(str(run["run"]), outcome, is_failure(outcome), values,
               {k: sources.get(k, "name") for k in values}, run.get("validation_best"))


# -- families and columns ----------------------------------------------------------------------


def find_families(rows: Sequence[Row]) -> List[List[Row]]:
    """Connected groups of runs linked by a declared, non-seed hyperparameter: two runs are linked
    when they declare the same set of them, or share one and sit in the same folder (`tf_hw04_Adam`
    and `tf_hw04_SGD_Momentum-0.9`). Two sweeps in sibling folders that both vary `lr` but declare
    different settings stay apart."""
    parent = {r.run: r.run for r in rows}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_with: Dict[tuple, str] = {}
    for r in rows:
        keys = frozenset(k for k, s in r.sources.items() if s != SOURCE_CURVE and not is_seed_key(k))
        folder = r.run.rpartition("/")[0]
        for bucket in ([("set", keys)] if keys else []) + [("folder", folder, k) for k in keys]:
            if bucket in first_with:
                parent[root(r.run)] = root(first_with[bucket])
            else:
                first_with[bucket] = r.run
    groups: Dict[str, List[Row]] = defaultdict(list)
    for r in rows:
        groups[root(r.run)].append(r)
    return [sorted(g, key=lambda r: r.run) for g in groups.values()]


def family_columns(family: Sequence[Row]) -> List[Column]:
    """Hyperparameters that two runs or more of the family have and that take two values or
    more among them; declared ones first."""
    names = sorted({k for r in family for k in r.values})
    out = []
    for name in names:
        have = [r for r in family if name in r.values]
        values = {r.run: r.values[name] for r in have}
        if len(have) < 2 or len({format_value(v) for v in values.values()}) < 2:
            continue
        out.append(Column(name, _kind(values.values()), values,
                          sorted({r.sources.get(name, "name") for r in have})))
    declared = [c for c in out if not c.derived]
    out = [c for c in out if not (c.derived and any(_echoes(c, d) for d in declared))]
    return sorted(out, key=lambda c: (c.derived, c.name))


def _echoes(derived: Column, declared: Column) -> bool:
    """A curve's value that says nothing the setting does not: same runs, one value per value."""
    if set(derived.values) != set(declared.values):
        return False
    pairs = {(format_value(declared.values[r]), format_value(derived.values[r])) for r in derived.values}
    return len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def _kind(values: Iterable[Value]) -> str:
    values = list(values)
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    return "text"


# -- findings ----------------------------------------------------------------------------------


def family_findings(family: Sequence[Row], columns: Sequence[Column]) -> List[dict]:
    """Splits, trends, seed stability and baseline comparisons of one family."""
    settings = [c for c in columns if not is_seed_key(c.name)]
    out: List[dict] = []
    seen: set = set()
    for col in settings:
        runs = [r for r in family if r.run in col.values]
        if len(runs) < MIN_RUNS:
            continue
        for cls in outcome_classes(runs):
            positive = frozenset(r.run for r in runs if cls.member(r))
            everyone = frozenset(r.run for r in runs)
            if not positive or positive == everyone:
                continue
            cut = (everyone, frozenset({positive, everyone - positive}))
            if cut in seen:
                continue
            finding = split_finding(col, runs, positive, cls, columns)
            if finding is not None:
                seen.add(cut)
                _note_pairs(finding, controlled_pairs(col, family, columns), positive)
                out.append(finding)
    split_on = {f["hyperparameter"] for f in out}
    out.extend(pair_findings(family, [c for c in settings if c.name not in split_on], columns))
    out.extend(trend_findings(family, settings, columns))
    out.extend(seed_findings(family, columns))
    out.extend(baseline_findings(family, settings))
    return out


def outcome_classes(runs: Sequence[Row]) -> List[OutcomeClass]:
    """The failures present (most severe first), the unstable ones together, "failed", then the
    other verdicts: a cut is described from its failing side whenever it has one."""
    present = {r.outcome for r in runs}
    codes = [c for c in OUTCOME_ORDER if c in present]
    out = [OutcomeClass(c, (c,)) for c in codes if is_failure(c)]
    unstable = tuple(c for c in UNSTABLE if c in present)
    if len(unstable) > 1:
        out.append(OutcomeClass("unstable", unstable))
    out.append(OutcomeClass("failed", ()))
    out.extend(OutcomeClass(c, (c,)) for c in codes if not is_failure(c))
    return out


def split_finding(col: Column, runs: Sequence[Row], positive: frozenset, cls: OutcomeClass,
                  columns: Sequence[Column]) -> Optional[dict]:
    """The finding when `col` cuts `runs` cleanly into `positive` and the rest, else None."""
    if col.kind == "number":
        groups = numeric_split(col, runs, positive)
    else:
        groups = categorical_split(col, runs, positive)
    if groups is None:
        return None
    names = [r.run for r in runs]
    codes = sorted({r.outcome for r in runs if r.run in positive}, key=OUTCOME_ORDER.index)
    chance = split_chance(col, runs, len(positive))
    pos_runs = [n for n in names if n in positive]
    neg_runs = [n for n in names if n not in positive]
    confounded = confounders(col, [pos_runs, neg_runs], columns)
    verb = outcome_phrase(cls, codes)
    text = (numeric_sentence if col.kind == "number" else categorical_sentence)(col, groups, verb)
    return {
        "kind": "split" if col.kind == "number" else "categorical",
        "hyperparameter": col.name,
        "outcome": cls.name,
        "codes": codes,
        "text": text + support_note(len(runs), chance) + confounding_note(confounded),
        "runs": names,
        "matching": pos_runs,
        "groups": groups,
        "support": len(runs),
        "chance": round(chance, 4),
        "confounded_with": confounded,
    }


def numeric_split(col: Column, runs: Sequence[Row], positive: frozenset) -> Optional[List[dict]]:
    """[positive side, other side] when a threshold on `col` separates `positive` exactly."""
    ordered = sorted(runs, key=lambda r: col.values[r.run])
    labels = [r.run in positive for r in ordered]
    k = sum(labels)
    for high in (True, False):
        side = labels[-k:] if high else labels[:k]
        if not all(side):
            continue
        pos = ordered[-k:] if high else ordered[:k]
        neg = ordered[:-k] if high else ordered[k:]
        if col.values[pos[0 if high else -1].run] == col.values[neg[-1 if high else 0].run]:
            continue  # a value on both sides: no threshold separates them
        return [_side(col, pos, positive, ">=" if high else "<="),
                _side(col, neg, positive, "<=" if high else ">=")]
    return None


def _side(col: Column, rows: Sequence[Row], positive: frozenset, op: str) -> dict:
    values = sorted({col.values[r.run] for r in rows})
    bound = values[0] if op == ">=" else values[-1]
    label = (f"{col.name} = {format_value(bound)}" if len(values) == 1
             else f"{col.name} {op} {format_value(bound)}")
    names = sorted(r.run for r in rows)
    return {"label": label, "runs": names, "matching": sum(n in positive for n in names), "total": len(names)}


def categorical_split(col: Column, runs: Sequence[Row], positive: frozenset) -> Optional[List[dict]]:
    """One group per value when every value's runs all have the outcome or all lack it, and some
    value holds two runs or more; positive values first."""
    by_value: Dict[str, List[str]] = defaultdict(list)
    for r in runs:
        by_value[col.text(r.run)].append(r.run)
    if max(len(v) for v in by_value.values()) < 2:
        return None
    groups = []
    for value, names in by_value.items():
        hits = sum(n in positive for n in names)
        if 0 < hits < len(names):
            return None
        groups.append({"label": f"{col.name} = {value}", "value": value, "runs": sorted(names),
                       "matching": hits, "total": len(names)})
    groups.sort(key=lambda g: (g["matching"] == 0, -g["total"], g["value"]))
    return groups


def split_chance(col: Column, runs: Sequence[Row], k: int) -> float:
    """Share of the ways to give the outcome to `k` of these runs that `col` cuts as cleanly."""
    n = len(runs)
    if col.kind == "number":
        sizes = [size for _, size in sorted(Counter(col.values[r.run] for r in runs).items())]
        clean = sum(1 for prefix in _prefix_sums(sizes) if prefix == k)
        clean += sum(1 for prefix in _prefix_sums(sizes[::-1]) if prefix == k)
    else:
        sizes = list(Counter(col.text(r.run) for r in runs).values())
        clean = _subset_sums(sizes).get(k, 0)
    return min(1.0, clean / math.comb(n, k))


def _prefix_sums(sizes: List[int]) -> List[int]:
    out, total = [], 0
    for s in sizes[:-1]:
        total += s
        out.append(total)
    return out


def _subset_sums(sizes: List[int]) -> Dict[int, int]:
    """{total: number of subsets of `sizes` with that total}."""
    counts = {0: 1}
    for s in sizes:
        nxt = dict(counts)
        for total, c in counts.items():
            nxt[total + s] = nxt.get(total + s, 0) + c
        counts = nxt
    return counts


def confounders(col: Column, groups: Sequence[Sequence[str]], columns: Sequence[Column]) -> List[str]:
    """Other settings that separate the same groups of runs (value sets pairwise disjoint):
    any of them could explain the difference. A curve's learning rate is not counted against a
    learning-rate setting it merely echoes, nor are seeds."""
    out = []
    for other in columns:
        if other.name == col.name or is_seed_key(other.name):
            continue
        if (other.derived or col.derived) and (other.name in LR_KEYS and col.name in LR_KEYS):
            continue
        if not all(run in other.values for g in groups for run in g):
            continue
        sets = [{other.text(run) for run in g} for g in groups]
        if all(a.isdisjoint(b) for a, b in combinations(sets, 2)):
            out.append(other.name)
    return out


# -- sentences ---------------------------------------------------------------------------------


def outcome_phrase(cls: OutcomeClass, codes: Sequence[str]) -> str:
    """"went NaN", "diverged or went NaN", "failed (not_learning, overfitting)"."""
    if cls.name == "failed":
        return f"failed ({', '.join(codes)})"
    verbs = [VERBS.get(c, c) for c in sorted(codes, key=lambda c: UNSTABLE[::-1].index(c) if c in UNSTABLE else 9)]
    return verbs[0] if len(verbs) == 1 else ", ".join(verbs[:-1]) + " or " + verbs[-1]


def _runs_subject(n: int, label: str) -> str:
    if n == 1:
        return f"The run with {label}"
    if n == 2:
        return f"Both runs with {label}"
    return f"All {n} runs with {label}"


def _none_of(n: int, label: str) -> str:
    if n == 1:
        return f"the run with {label} did not"
    if n == 2:
        return f"neither of the 2 with {label} did"
    return f"none of the {n} with {label} did"


def numeric_sentence(col: Column, groups: List[dict], verb: str) -> str:
    pos, neg = groups
    if pos["total"] == 1:
        verb = verb.replace("were ", "was ")
    return f"{_runs_subject(pos['total'], pos['label'])} {verb}; {_none_of(neg['total'], neg['label'])}."


def categorical_sentence(col: Column, groups: List[dict], verb: str) -> str:
    hits = [f"{g['value']}: {g['matching']} of {g['total']} {verb}" for g in groups if g["matching"]]
    misses = [f"{g['value']}: 0 of {g['total']}" for g in groups if not g["matching"]]
    return f"{col.name} " + "; ".join(hits) + ("; " + ", ".join(misses) if misses else "") + "."


def support_note(runs: int, chance: Optional[float], what: str = "a cut") -> str:
    """`(5 runs; chance alone gives a cut this clean 60% of the time.)`, with a leading space."""
    if chance is None:
        return f" ({runs} runs.)"
    share = f"{chance * 100:.2g}%" if chance < 0.995 else "100%"
    return f" ({runs} runs; chance alone gives {what} this clean {share} of the time.)"


def confounding_note(names: Sequence[str]) -> str:
    if not names:
        return ""
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "separates" if len(names) == 1 else "separate"
    return f" Confounded: {listed} {verb} the same runs, so the cause may be any of them."


# -- runs that differ in one setting only ------------------------------------------------------


MAX_PAIRS = 3  # pair findings per hyperparameter
MAX_PAIRS_LISTED = 200  # pairs looked at per hyperparameter (a big grid holds many)


def controlled_pairs(col: Column, family: Sequence[Row], columns: Sequence[Column],
                     limit: int = MAX_PAIRS_LISTED) -> List[Tuple[Row, Row]]:
    """Up to `limit` pairs of runs that differ in `col` and in no other declared setting (seeds
    aside); none when `col` is the only declared setting (then every pair would qualify)."""
    others = [c for c in columns if c.name != col.name and not c.derived and not is_seed_key(c.name)]
    if not others:
        return []
    buckets: Dict[tuple, Dict[str, List[Row]]] = defaultdict(lambda: defaultdict(list))
    for r in family:
        if r.run in col.values:
            buckets[tuple(c.text(r.run) for c in others)][col.text(r.run)].append(r)
    out = []
    for by_value in buckets.values():
        for (_, xs), (_, ys) in combinations(sorted(by_value.items()), 2):
            for a in xs:
                for b in ys:
                    out.append((a, b))
                    if len(out) >= limit:
                        return out
    return out


def _note_pairs(finding: dict, pairs: Sequence[Tuple[Row, Row]], positive: frozenset) -> None:
    """A split backed by runs that differ in its setting alone says so (no confounding there)."""
    crossing = [(a, b) for a, b in pairs if (a.run in positive) != (b.run in positive)]
    finding["controlled_pairs"] = [[a.run, b.run] for a, b in crossing[:20]]
    if crossing:
        a, b = crossing[0]
        extra = len(crossing) - 1
        more = f" (and {extra}{'+' if len(pairs) >= MAX_PAIRS_LISTED else ''} more such pair{'s' if extra > 1 else ''})" if extra else ""
        finding["text"] += f" {a.run} and {b.run} differ in {finding['hyperparameter']} alone{more}."


def pair_findings(family: Sequence[Row], settings: Sequence[Column], columns: Sequence[Column]) -> List[dict]:
    """For a setting no split covers: runs that differ in it alone and got different outcomes,
    one of them a failure."""
    out = []
    for col in settings:
        pairs = [(a, b) for a, b in controlled_pairs(col, family, columns)
                 if a.outcome != b.outcome and (a.failed or b.failed)]
        for a, b in pairs[:MAX_PAIRS]:
            sides = [f"with {col.name} = {col.text(r.run)} it {_singular(VERBS.get(r.outcome, r.outcome))}"
                     for r in (a, b)]
            out.append({
                "kind": "pair",
                "hyperparameter": col.name,
                "outcome": "failed",
                "codes": sorted({a.outcome, b.outcome}, key=lambda c: OUTCOME_ORDER.index(c) if c in OUTCOME_ORDER else 99),
                "text": f"{a.run} and {b.run} differ in {col.name} alone: {sides[0]}, {sides[1]}. (2 runs.)",
                "runs": [a.run, b.run],
                "matching": [r.run for r in (a, b) if r.failed],
                "groups": [{"label": f"{col.name} = {col.text(r.run)}", "runs": [r.run],
                            "matching": int(r.failed), "total": 1} for r in (a, b)],
                "support": 2,
                "chance": None,
                "confounded_with": [],
            })
    return out


def _singular(verb: str) -> str:
    return verb.replace("were ", "was ")


# -- trends ------------------------------------------------------------------------------------


def trend_findings(family: Sequence[Row], settings: Sequence[Column],
                   columns: Sequence[Column]) -> List[dict]:
    """Monotone trends of when validation is best, and of how good it gets, over a number."""
    out = []
    reported: set = set()
    for col in (c for c in settings if c.kind == "number"):
        rows = [r for r in family if r.run in col.values and r.best and r.outcome not in FATAL_EVENTS]
        if len({(r.best.get("metric"), r.best.get("direction")) for r in rows}) != 1:
            continue
        for quantity in ("step", "value"):
            finding = _trend(col, rows, quantity, columns)
            if finding is None:
                continue
            signature = (frozenset(finding["runs"]), quantity, tuple(finding["medians"]))
            if signature in reported:
                continue
            reported.add(signature)
            out.append(finding)
    return out


def _trend(col: Column, rows: Sequence[Row], quantity: str, columns: Sequence[Column]) -> Optional[dict]:
    by_value: Dict[float, List[float]] = defaultdict(list)
    for r in rows:
        q = r.best.get(quantity)
        if isinstance(q, (int, float)) and not isinstance(q, bool) and math.isfinite(q):
            by_value[col.values[r.run]].append(float(q))
    if len(by_value) < MIN_TREND_VALUES:
        return None
    xs = sorted(by_value)
    medians = [_median(by_value[x]) for x in xs]
    diffs = [b - a for a, b in zip(medians, medians[1:])]
    if not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
        return None
    rising = diffs[0] > 0
    runs = sorted(r.run for r in rows if col.values[r.run] in by_value)
    groups = [[r.run for r in rows if col.values[r.run] == x] for x in xs]
    best = rows[0].best
    pairs = ", ".join(f"{format_value(x)}: {_quantity_text(quantity, m)}" for x, m in zip(xs, medians))
    text = (f"The higher the {col.name}, {_trend_phrase(quantity, rising, best)} "
            f"({col.name} {pairs}).")
    chance = 2 / math.factorial(len(xs))
    confounded = confounders(col, groups, columns)
    return {
        "kind": "trend",
        "hyperparameter": col.name,
        "outcome": "validation_best_" + quantity,
        "codes": [],
        "text": text + support_note(len(runs), chance, "an order") + confounding_note(confounded),
        "runs": runs,
        "matching": runs,
        "groups": [{"label": f"{col.name} = {format_value(x)}", "runs": sorted(g), "value_median": m,
                    "matching": len(g), "total": len(g)} for x, g, m in zip(xs, groups, medians)],
        "medians": [float(f"{m:.6g}") for m in medians],
        "support": len(runs),
        "chance": round(chance, 4),
        "confounded_with": confounded,
    }


def _trend_phrase(quantity: str, rising: bool, best: Mapping) -> str:
    metric = str(best.get("metric") or "metric")
    if quantity == "step":
        return f"the {'later' if rising else 'earlier'} validation {metric} is at its best"
    better = rising == (best.get("direction") == "max")
    word = ("higher" if rising else "lower")
    return f"the {word} the best validation {metric} ({'better' if better else 'worse'})"


def _quantity_text(quantity: str, value: float) -> str:
    if quantity == "step":  # a median of two steps may fall between them
        return f"step {int(value):,}" if float(value).is_integer() else f"step {value:,.1f}"
    return f"{value:.4g}"


def _median(xs: List[float]) -> float:
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


# -- seeds and baselines -----------------------------------------------------------------------


def seed_findings(family: Sequence[Row], columns: Sequence[Column]) -> List[dict]:
    """Runs that repeat one setting (differing in a seed, or in nothing declared): how many of
    the repeats share each verdict."""
    declared = [c for c in columns if not c.derived and not is_seed_key(c.name)]
    has_seed = any(is_seed_key(c.name) for c in columns)
    by_setting: Dict[tuple, List[Row]] = defaultdict(list)
    for r in family:
        by_setting[tuple(c.text(r.run) for c in declared)].append(r)
    repeated = {k: v for k, v in by_setting.items() if len(v) >= 2}
    if not repeated:
        return []
    word = "seeds" if has_seed else "repeats"
    out = []
    for setting, rows in sorted(repeated.items()):
        counts = Counter(r.outcome for r in rows)
        if len(counts) < 2:
            continue
        where = ", ".join(f"{c.name}={v}" for c, v in zip(declared, setting)) or "this setting"
        parts = [f"{n} of {len(rows)} {word} {VERBS.get(code, code)}"
                 for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], OUTCOME_ORDER.index(kv[0])
                                                                      if kv[0] in OUTCOME_ORDER else 99))]
        out.append(_seed_finding(f"At {where}: " + ", ".join(parts) + ".", rows, counts))
    if not out:
        rows = [r for group in repeated.values() for r in group]
        text = (f"Every setting run with several {word} got one verdict across them "
                f"({len(repeated)} setting{'s' if len(repeated) > 1 else ''}, {len(rows)} runs).")
        out.append(_seed_finding(text, rows, Counter(r.outcome for r in rows)))
    return out


def _seed_finding(text: str, rows: Sequence[Row], counts: Counter) -> dict:
    names = sorted(r.run for r in rows)
    return {
        "kind": "seeds",
        "hyperparameter": "seed",
        "outcome": "stability",
        "codes": sorted(counts, key=lambda c: OUTCOME_ORDER.index(c) if c in OUTCOME_ORDER else 99),
        "text": text,
        "runs": names,
        "matching": names,
        "groups": [{"label": code, "runs": sorted(r.run for r in rows if r.outcome == code),
                    "matching": n, "total": len(rows)} for code, n in counts.items()],
        "support": len(rows),
        "chance": None,
        "confounded_with": [],
    }


def baseline_findings(family: Sequence[Row], settings: Sequence[Column]) -> List[dict]:
    """Against a category value named like a baseline (`original`, `baseline`...): what each
    other value's verdict was, when some differ from the baseline's."""
    out = []
    for col in (c for c in settings if c.kind == "text"):
        by_value: Dict[str, List[Row]] = defaultdict(list)
        for r in family:
            if r.run in col.values:
                by_value[col.text(r.run)].append(r)
        base = next((v for v in by_value if v.lower() in BASELINE_WORDS), None)
        if base is None or len(by_value) < 3:
            continue
        base_outcomes = {r.outcome for r in by_value[base]}
        if len(base_outcomes) != 1:
            continue
        base_outcome = base_outcomes.pop()
        changed, same = [], []
        for value in sorted(v for v in by_value if v != base):
            outcomes = sorted({r.outcome for r in by_value[value]})
            (same if outcomes == [base_outcome] else changed).append((value, outcomes))
        if not changed:
            continue
        text = (f"Against {col.name} {base} ({base_outcome}): "
                + "; ".join(f"{v} -> {', '.join(o)}" for v, o in changed))
        if same:
            text += f"; {', '.join(v for v, _ in same)}: {base_outcome} as well"
        names = sorted(r.run for rows in by_value.values() for r in rows)
        out.append({
            "kind": "baseline",
            "hyperparameter": col.name,
            "outcome": base_outcome,
            "codes": sorted({r.outcome for rows in by_value.values() for r in rows}),
            "text": text + f" ({len(names)} runs, one per value: a single run per value cannot "
                    "tell a setting from chance.)" if all(len(v) == 1 for v in by_value.values())
                    else text + f" ({len(names)} runs.)",
            "runs": names,
            "matching": sorted(r.run for v, _ in changed for r in by_value[v]),
            "groups": [{"label": f"{col.name} = {v}", "runs": sorted(r.run for r in rows),
                        "matching": 0, "total": len(rows)} for v, rows in sorted(by_value.items())],
            "support": len(names),
            "chance": None,
            "confounded_with": [],
        })
    return out


def _finding_rank(f: dict) -> tuple:
    kind = {"split": 0, "categorical": 0, "seeds": 1, "pair": 2, "trend": 3, "baseline": 4}.get(f["kind"], 5)
    chance = f["chance"] if f.get("chance") is not None else 1.0
    return (kind, bool(f["confounded_with"]), chance, -f["support"], f["hyperparameter"], f["text"])


# -- the table ---------------------------------------------------------------------------------


def outcome_table(rows: Sequence[Row], columns: Sequence[Column]) -> dict:
    """Hyperparameter value x outcome: which runs had which verdict at each value (numbers with
    more than `MAX_BINS` distinct values in quantile bins)."""
    outcome = {r.run: r.outcome for r in rows}
    present = {r.outcome for r in rows}
    outcomes = [o for o in OUTCOME_ORDER if o in present] + sorted(present - set(OUTCOME_ORDER))
    table_rows = []
    for col in columns:
        for label, value, names in _value_groups(col, set(outcome)):
            cells = {o: sorted(n for n in names if outcome[n] == o) for o in outcomes}
            table_rows.append({"hyperparameter": col.name, "value": value, "label": label,
                               "runs": sorted(names), "cells": {o: v for o, v in cells.items() if v}})
    severity = {o: "error" if o in FATAL_EVENTS else SEVERITY.get(o, "info") for o in outcomes}
    return {"outcomes": outcomes, "severity": severity, "rows": table_rows}


def _value_groups(col: Column, runs: set) -> List[Tuple[str, object, List[str]]]:
    by_key: Dict[object, List[str]] = defaultdict(list)
    value_of: Dict[object, Value] = {}
    for run, v in col.values.items():
        if run in runs:
            by_key[col.key(run)].append(run)
            value_of.setdefault(col.key(run), v)
    distinct = sorted(by_key)
    if col.kind != "number" or len(distinct) <= MAX_BINS:
        return [(format_value(value_of[d]), value_of[d], by_key[d]) for d in distinct]
    bins = [distinct[round(i * len(distinct) / 5):round((i + 1) * len(distinct) / 5)] for i in range(5)]
    return [(f"{format_value(b[0])} - {format_value(b[-1])}", [b[0], b[-1]],
             [run for d in b for run in by_key[d]]) for b in bins if b]
