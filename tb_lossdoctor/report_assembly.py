"""Assemble the plugin's report body from the run groups' diagnoses (`report_cache` keeps those).

A run group's diagnosis (`GroupResult`) is the engine's report on the group's series, minus the
fields of the whole report (`WHOLE_REPORT_FIELDS`). The body built here is what `engine.diagnose`
on every group together, then `engine.add_sweep` and `report.dumps`, would give, byte for byte,
at a few percent of that cost when one run of 10,000 changed (issue #13):

- each run's entry, with the hyperparameters `engine.add_sweep` gives it, is serialised once,
  when its group is diagnosed or its HParams record changes, and kept in its `GroupResult`;
- an `Assembly` holds the runs in the report's order with those texts; the previous body's
  assembly is patched with the groups diagnosed since (`assemble`), not rebuilt;
- per request, only the small top-level fields are merged (`merge_reports`), the across-runs
  `sweep` is recomputed over every run, and the texts are joined around them (`body_json`).

Also here: the body answered while a build is still going (`partial_json`) and the body of a
report diagnosed as one group (`together_json`, when the run grouping disagrees with the engine).

This module keeps nothing between requests: `report_cache` keeps the `GroupResult`s and the last
`Assembly` of each view (experiment, run filter), under its lock. Nothing here takes a lock.
"""

from __future__ import annotations

import json
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from tb_lossdoctor import report as report_mod
from tb_lossdoctor.codes import FATAL_EVENTS
from tb_lossdoctor.readers import hparams_records

# Fields of the whole report, never of one run group's part.
WHOLE_REPORT_FIELDS = ("version", "generated_at", "sampling")
SAMPLING_HINT = "Run tensorboard with --samples_per_plugin scalars=0 to diagnose every point"
# A partial report names at most this many of the run groups still pending.
MAX_PENDING_LISTED = 1000


# -- one run group's part -----------------------------------------------------------------------


class GroupResult:
    """One run group's part of a report: the engine's report minus version and generated_at,
    kept compact (at 10,000 run groups the engine's dicts weigh several times their text).

    Kept: the part's top-level fields other than `runs` (`fields`), and per run its entry as
    the whole report writes it with no HParams record (the hyperparameters of its name and
    learning-rate curve) as JSON text, with the few fields the report's order and the sweep
    read (`summary`). A run that gets an HParams record, or is a record's child folder, has its
    entry rewritten from that text, parsed back, and kept too."""

    __slots__ = ("fields", "_plain", "_entries", "_rest")

    def __init__(self, parts: dict):
        from tb_lossdoctor.engine import swept_entry

        self.fields = {k: v for k, v in parts.items() if k != "runs"}
        self._plain: Dict[str, Tuple[dict, str]] = {}  # run -> (summary, JSON text) with no record, in order
        self._entries: Dict[str, tuple] = {}  # run -> (key, summary, text) for another key
        self._rest: Optional[Tuple[dict, List[tuple]]] = None  # (skeleton, [(field, value)])
        for run in parts.get("runs", ()):
            swept = swept_entry(run, None, False)
            self._plain[run["run"]] = (_summary(swept), report_mod.dumps(swept))

    def runs(self) -> Sequence[dict]:
        """Each run's summary (`_summary` of its entry with no record), in the part's order."""
        return [summary for summary, _ in self._plain.values()]

    def plain_entries(self) -> Iterable[Tuple[str, Tuple[dict, str]]]:
        """(run, (summary, JSON text)) of each run's entry with no HParams record."""
        return self._plain.items()

    def rest(self, skeleton: dict) -> List[tuple]:
        """The fields `merge_reports` would merge, minus `sweep` (rebuilt whole) and minus the
        neutral values ([], 0, False) of fields the skeleton holds as the same neutral value:
        merging those changes nothing (the engine gives each field one type). Most groups have
        nothing left."""
        memo = self._rest
        if memo is not None and memo[0] is skeleton:
            return memo[1]
        out = []
        for k, v in self.fields.items():
            if k == "sweep" and k in skeleton:
                continue
            if k in skeleton and _neutral(v) and type(v) is type(skeleton[k]) and _neutral(skeleton[k]):
                continue
            out.append((k, v))
        self._rest = (skeleton, out)
        return out

    def entry(self, run: str, record_key, record: Optional[dict], child: bool) -> Tuple[dict, str]:
        """(summary, JSON text) of `run`'s entry as `engine.add_sweep` writes it in the whole
        report, with its HParams `record` (`record_key`: its frozen form) and record-child state."""
        plain = self._plain[run]
        if record_key is None and not child:
            return plain
        key = (record_key, child)
        memo = self._entries.get(run)
        if memo is not None and memo[0] == key:
            return memo[1], memo[2]
        from tb_lossdoctor.engine import swept_entry

        swept = swept_entry(json.loads(plain[1]), record, child)
        summary, text = _summary(swept), report_mod.dumps(swept)
        self._entries[run] = (key, summary, text)
        return summary, text


# What the report's order (`report.order_runs`) and the across-runs sweep (`sweep.analyse`) read
# of a run's entry; of its findings, only the fatal events' codes.
_SUMMARY_FIELDS = ("run", "status", "verdict", "hparams", "hparam_sources", "validation_best")


def _summary(entry: dict) -> dict:
    """The fields of `entry` the report's order and the sweep read."""
    out = {k: entry[k] for k in _SUMMARY_FIELDS if k in entry}
    fatal = [{"code": f["code"]} for f in entry.get("findings") or () if f.get("code") in FATAL_EVENTS]
    if fatal:
        out["findings"] = fatal
    return out


def _neutral(value) -> bool:
    """Whether merging `value` into a field holding the same neutral value changes nothing."""
    return value is False or (type(value) is int and value == 0) or (type(value) is list and not value)


# -- merging parts into a report (as a dict) -------------------------------------------------------


def merge_reports(parts: List[dict], skeleton: dict) -> dict:
    """Merge per-group reports into one: runs re-ordered, lists concatenated, counts added,
    flags or-ed.

    `skeleton` (the engine's report on nothing) gives every top-level field a value even when
    there are no groups; fields the engine adds later are merged by the same rules.
    """
    out = {k: v for k, v in skeleton.items() if k not in WHOLE_REPORT_FIELDS}
    seen = set()
    for part in parts:
        for k, v in part.items():
            if k in WHOLE_REPORT_FIELDS:
                continue
            if k not in seen:
                seen.add(k)
                out[k] = list(v) if isinstance(v, list) else v
            elif isinstance(v, list) and isinstance(out.get(k), list):
                out[k].extend(v)
            elif isinstance(v, bool) and isinstance(out.get(k), bool):
                out[k] = out[k] or v
            elif isinstance(v, int) and isinstance(out.get(k), int):  # counts add up
                out[k] += v
    out["runs"] = report_mod.order_runs(list(out.get("runs", [])))
    if isinstance(out.get("ignored"), list):
        from tb_lossdoctor.engine import MAX_IGNORED_LISTED

        out["ignored"] = out["ignored"][:MAX_IGNORED_LISTED]
    out.setdefault("problems", [])
    out["sampled"] = bool(out.get("sampled", False))
    return out


def whole_report(parts: List[dict], skeleton: dict, sample_limit: Optional[int]) -> dict:
    """The report of the groups' parts, with the whole report's own fields (the caller
    serialises it, once, when complete)."""
    merged = merge_reports(parts, skeleton)
    out = {"version": report_mod.REPORT_VERSION, "generated_at": report_mod.utc_now()}
    out.update(merged)
    if out["sampled"] and sample_limit:
        out["sampling"] = {"limit": int(sample_limit), "hint": SAMPLING_HINT}
    return out


def partial_json(progress: Dict[str, GroupResult], groups: Iterable[str], skeleton: dict,
                 sample_limit: Optional[int]) -> str:
    """The body answered while a build goes on: the groups diagnosed so far (`progress`), worst
    first, and how many of `groups` are still pending; no across-runs `sweep` yet."""
    results = [progress[name] for name in sorted(progress)]
    report = whole_report([r.fields for r in results], skeleton, sample_limit)
    pending = sorted(set(groups) - set(progress))
    report["pending"] = {"count": len(pending), "runs": pending[:MAX_PENDING_LISTED]}
    report["sweep"] = None  # across runs: once every run is diagnosed
    texts = {run: text for r in results for run, (_, text) in r.plain_entries()}
    ordered = report_mod.order_runs([run for r in results for run in r.runs()])
    return _join(report, [texts[run["run"]] for run in ordered])


def together_json(report: dict, hparams: Optional[dict], file_problems: Sequence[dict]) -> str:
    """The body of `report`, the whole experiment diagnosed as one group (`whole_report` of one
    part): with the across-runs `sweep` and the logdir's `file_problems`."""
    from tb_lossdoctor.engine import add_sweep

    report = add_sweep(report, hparams)
    if file_problems:
        report["problems"] = list(report.get("problems", [])) + list(file_problems)
    return report_mod.dumps(report)


# -- the runs of one body, kept and patched ----------------------------------------------------------


class Assembly:
    """The runs of one body, in the report's order, with what the whole report writes for each:
    read-only once built, patched into a new one by `patched`."""

    __slots__ = ("skeleton", "hparams_key", "results", "ordered", "swept", "entries", "texts", "rests",
                 "records", "children", "words")

    @classmethod
    def build(cls, results: Dict[str, GroupResult], skeleton: dict, hparams: Optional[dict],
              hparams_key: tuple, words_memo: Optional[tuple]) -> "Optional[Assembly]":
        """From every group's result; None when two groups hold runs of the same name.

        `words_memo` is a previous assembly's `words` (kept while the runs' names are the same)."""
        from tb_lossdoctor import hparams as hp

        self = cls()
        self.skeleton, self.hparams_key, self.results = skeleton, hparams_key, dict(results)
        order = sorted(results)
        self.rests = {name: rest for name, rest in ((n, results[n].rest(skeleton)) for n in order) if rest}
        self.ordered = report_mod.order_runs([run for name in order for run in results[name].runs()])
        names = [run["run"] for run in self.ordered]
        groups = set(names)
        if len(groups) != len(names):
            return None
        self.records = hp.assign_records(hparams, groups) if hparams else {}
        self.children = frozenset(n for n in names if hp.is_record_child(n, groups))
        self.swept = {}
        for name in order:
            self._sweep_entries(results[name])
        # As `engine.add_sweep`: words of the names that become settings across the set (a pure
        # function of the names, kept while they stay the same).
        free = tuple(n for n in names if n not in self.children)
        if words_memo is None or words_memo[0] != free:
            words_memo = (free, hp.free_word_hparams(list(free)))
        self.words = words_memo
        self._lists()
        return self

    def patched(self, results: Dict[str, GroupResult]) -> "Optional[Assembly]":
        """This assembly with the groups whose result changed; None when the groups or their
        runs' names changed (or most groups did): then it is built anew."""
        changed = self._changed(results)
        if changed is None:
            return None
        if not changed:
            return self
        old = self.results
        new = Assembly()
        new.skeleton, new.hparams_key, new.records, new.children, new.words = (
            self.skeleton, self.hparams_key, self.records, self.children, self.words)
        new.results = dict(old)
        new.rests = dict(self.rests)
        new.swept = dict(self.swept)
        dropped = set()
        added = []
        for name in changed:
            dropped.update(id(run) for run in old[name].runs())
            added.extend(results[name].runs())
            new.results[name] = results[name]
            rest = results[name].rest(self.skeleton)
            if rest:
                new.rests[name] = rest
            else:
                new.rests.pop(name, None)
            new._sweep_entries(results[name])
        # The unchanged runs stay in order: sorting them with the changed ones is one merge.
        new.ordered = report_mod.order_runs([run for run in self.ordered if id(run) not in dropped] + added)
        new._lists()
        return new

    def _changed(self, results: Dict[str, GroupResult]) -> Optional[List[str]]:
        """The groups whose result is not this assembly's; None when patching would not do:
        other groups, other run names in a changed group, or more than a quarter changed."""
        old = self.results
        if len(results) != len(old):
            return None
        changed = [name for name, result in results.items() if old.get(name) is not result]
        if len(changed) * 4 > len(results):
            return None
        for name in changed:
            if name not in old:
                return None
            before = [run["run"] for run in old[name].runs()]
            if sorted(before) != sorted(run["run"] for run in results[name].runs()):
                return None
        return changed

    def _sweep_entries(self, result: GroupResult) -> None:
        """Keep each run of `result` as the whole report writes it, with its JSON text."""
        for run in result.runs():
            name = run["run"]
            record = self.records.get(name)
            record_key = None if record is None else hparams_records.freeze({"": record})
            self.swept[name] = result.entry(name, record_key, record, name in self.children)

    def _lists(self) -> None:
        """`entries` and `texts`: the kept runs' entries and texts, in the report's order."""
        pairs = [self.swept[run["run"]] for run in self.ordered]
        self.entries = [entry for entry, _ in pairs]
        self.texts = [text for _, text in pairs]


def assemble(results: Dict[str, GroupResult], skeleton: dict, hparams: Optional[dict],
             previous: Optional[Assembly], words_memo: Optional[tuple]) -> Optional[Assembly]:
    """The assembly of `results`: `previous` (the last body's, for the same view) patched when
    it was made with the same skeleton and HParams records, else built anew. None when two groups
    hold runs of the same name."""
    hparams_key = hparams_records.freeze(hparams or {})
    if previous is not None and previous.skeleton is skeleton and previous.hparams_key == hparams_key:
        assembly = previous.patched(results)
        if assembly is not None:
            return assembly
    return Assembly.build(results, skeleton, hparams, hparams_key, words_memo)


# -- the body's JSON text ---------------------------------------------------------------------------


def body_json(assembly: Assembly, extra_problems: Sequence[dict], sample_limit: Optional[int],
              file_problems: Sequence[dict]) -> str:
    """The whole report's JSON text: what `whole_report`, `engine.add_sweep` and `report.dumps`
    give, byte for byte, joined from each run's kept JSON text.

    Per request: the few non-neutral top-level fields are merged, the across-runs `sweep` is
    recomputed over every run, and the texts are joined."""
    return _join(_top_fields(assembly, extra_problems, sample_limit, file_problems), assembly.texts)


def _top_fields(assembly: Assembly, extra_problems: Sequence[dict], sample_limit: Optional[int],
                file_problems: Sequence[dict]) -> dict:
    """Every top-level field of the report, in order; `runs` is joined from the texts instead."""
    from tb_lossdoctor.sweep import analyse

    rests = [dict(assembly.rests[name]) for name in sorted(assembly.rests)]
    if extra_problems:
        rests.append({"problems": extra_problems})
    out = whole_report(rests, assembly.skeleton, sample_limit)
    out["sweep"] = analyse(assembly.entries, assembly.words[1])
    if file_problems:
        out["problems"] = list(out.get("problems", [])) + list(file_problems)
    return out


def _join(fields: dict, run_texts: List[str]) -> str:
    """`report.dumps(fields)` with `runs` written as the already serialised `run_texts`."""
    head, tail = [], []
    for k, v in fields.items():
        if k == "runs":
            head.append(_key_text(k) + ": [")
            tail = [""]
        else:
            (tail or head).append(_key_text(k) + ": " + report_mod.dumps(v))
    if not tail:  # no `runs` field at all (an engine without one): nothing to join
        return "{" + ", ".join(head) + "}"
    return "".join(("{", ", ".join(head), ", ".join(run_texts), "]", ", ".join(tail), "}"))


def _key_text(key) -> str:
    """A field name as `report.dumps` writes it."""
    return json.dumps(str(key), ensure_ascii=False)
