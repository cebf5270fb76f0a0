"""Following live runs: stable verdicts across updates, and what changed.

The engine judges the points it is given; a run at the edge of a threshold can swing between two
verdicts as points arrive. `VerdictTracker` adds the hysteresis: a new trend verdict replaces the
one shown only once it has been found on `confirm` consecutive updates that brought new data
(meanwhile the finding says it is pending). Events (`nan`, `blowup`, `spikes`) are facts and
show at once. The tracker only reads and writes report dicts (docs/report.md), so the `watch`
command and anything else that polls reports can share it.
"""

from __future__ import annotations

import copy
import datetime as _dt
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from tb_lossdoctor.codes import EVENTS
from tb_lossdoctor.report import SEVERITY_RANK, group_status

DEFAULT_CONFIRM = 3


@dataclass
class Change:
    """One change of a run group as shown: its verdict, or an event that appeared."""

    time: str
    run: str
    before: Optional[str]  # verdict shown before (None: first seen, or the run had died)
    after: Optional[str]
    new_events: List[str]
    finding: Optional[dict]  # the finding that explains the change
    status: str
    first_seen: bool = False

    @property
    def severity(self) -> str:
        return self.finding["severity"] if self.finding else "info"

    def to_dict(self) -> dict:
        return {"time": self.time, "run": self.run, "from": self.before, "to": self.after,
                "new_events": list(self.new_events), "status": self.status,
                "first_seen": self.first_seen, "finding": self.finding}


@dataclass
class _State:
    data_key: tuple
    verdict: Optional[str]
    verdict_finding: Optional[dict]
    events: frozenset
    candidate: Optional[str] = None
    candidate_seen: int = 0


def data_key(run: dict) -> tuple:
    """What identifies the data a run's verdict was drawn from: its curves and their lengths."""
    return tuple(sorted((s.get("run"), s.get("tag"), s.get("points")) for s in run.get("series", [])))


def now() -> str:
    return _dt.datetime.now().strftime("%H:%M:%S")


class VerdictTracker:
    """Stabilises the verdict of each run group across successive reports."""

    def __init__(self, confirm: int = DEFAULT_CONFIRM):
        self.confirm = max(1, int(confirm))
        self._states: Dict[str, _State] = {}

    def update(self, runs: List[dict]) -> Tuple[List[dict], List[Change]]:
        """The runs as they should be shown, and the changes since the previous update."""
        shown, changes = [], []
        stamp = now()
        for run in runs:
            out, change = self._update_one(run, stamp)
            shown.append(out)
            if change is not None:
                changes.append(change)
        return shown, changes

    def _update_one(self, run: dict, stamp: str) -> Tuple[dict, Optional[Change]]:
        name = run["run"]
        findings = run.get("findings", [])
        raw = run.get("verdict")
        raw_finding = next((f for f in findings if f.get("code") == raw), None)
        events = frozenset(f["code"] for f in findings if f.get("code") in EVENTS)
        key = data_key(run)
        state = self._states.get(name)
        if state is None:
            self._states[name] = _State(key, raw, raw_finding, events)
            return run, Change(stamp, name, None, raw, sorted(events), raw_finding or _worst(findings),
                               run.get("status", "ok"), first_seen=True)
        new_data = key != state.data_key
        state.data_key = key
        new_events = sorted(events - state.events)
        state.events = events
        before = state.verdict
        if raw == state.verdict:
            state.candidate, state.candidate_seen = None, 0
            state.verdict_finding = raw_finding  # same verdict, fresh numbers
        elif raw is None or self._confirmed(state, raw, new_data):
            # A run that died changes at once; another verdict once it has been confirmed.
            state.verdict, state.verdict_finding = raw, raw_finding
            state.candidate, state.candidate_seen = None, 0
        shown = run if raw == state.verdict else self._as_shown(run, state)
        changed = state.verdict != before
        if not changed and not new_events:
            return shown, None
        explains = [f for f in findings if f.get("code") in new_events]
        if changed and state.verdict_finding is not None:
            explains.append(state.verdict_finding)
        return shown, Change(stamp, name, before, state.verdict, new_events, _worst(explains),
                             shown.get("status", "ok"))

    def _confirmed(self, state: _State, raw: Optional[str], new_data: bool) -> bool:
        """Count one more update that found `raw`; only new data is new evidence."""
        if not new_data:
            return False
        state.candidate_seen = state.candidate_seen + 1 if raw == state.candidate else 1
        state.candidate = raw
        return state.candidate_seen >= self.confirm

    def _as_shown(self, run: dict, state: _State) -> dict:
        """The run with its last confirmed verdict, and the pending one named in its evidence."""
        out = copy.copy(run)
        events = [f for f in run.get("findings", []) if f.get("code") in EVENTS]
        held = copy.deepcopy(state.verdict_finding) if state.verdict_finding else None
        if held is not None:
            held.setdefault("evidence", {})["pending"] = {
                "verdict": state.candidate, "updates": state.candidate_seen, "needed": self.confirm}
            held["summary"] = (held.get("summary", "") + f" (The newest data points to {state.candidate}; "
                               f"seen on {state.candidate_seen} of the {self.confirm} updates needed.)")
        out["findings"] = _ordered(events + ([held] if held else []))
        out["verdict"] = state.verdict
        out["status"] = group_status(out["findings"])
        return out


def _worst(findings: List[dict]) -> Optional[dict]:
    return max(findings, key=lambda f: SEVERITY_RANK.get(f.get("severity"), 0), default=None)


def _ordered(findings: List[dict]) -> List[dict]:
    rank = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: (rank.get(f.get("severity"), 3), f.get("code") not in EVENTS))


def reaches(change_or_run_severity: str, threshold: Optional[str]) -> bool:
    """Does a severity reach `--until` (warning or error)?"""
    return threshold is not None and SEVERITY_RANK.get(change_or_run_severity, 0) >= SEVERITY_RANK[threshold]
