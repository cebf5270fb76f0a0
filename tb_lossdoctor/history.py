"""Diagnose a training history held in memory: the engine for training code, no logdir needed.

`diagnose_history({"loss": [...], "val_loss": [...]})` turns a Keras-style history (the dict of
`model.fit(...).history`, or `{"train_loss": [...], "val_loss": [...]}` as PyTorch loops name
their lists) into series of one run and returns the engine's report (docs/report.md): the same
JSON document the CLI and the tab give for a logdir, with one run group. The helpers below read
what a callback needs from that report: the verdict, the events, the finding to stop on and the
best checkpoint's step.

Only numpy is needed: no TensorFlow, torch or TensorBoard.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from tb_lossdoctor.codes import EVENTS, FATAL_EVENTS, SEVERITY
from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.series import Series, make_series
from tb_lossdoctor.settings import Settings

__all__ = [
    "DEFAULT_STOP_ON",
    "best_step",
    "check_codes",
    "diagnose_history",
    "events",
    "find_finding",
    "history_series",
    "run_entry",
    "verdict",
    "verdict_line",
    "verdict_markdown",
]

Steps = Union[Sequence[int], Mapping[str, Sequence[int]], None]

# What a callback stops on unless told otherwise: a run that died or climbs for good.
DEFAULT_STOP_ON: Tuple[str, ...] = ("nan", "blowup", "diverging")


def diagnose_history(
    history: Any,
    *,
    steps: Steps = None,
    run: str = "run",
    settings: Optional[Settings] = None,
) -> dict:
    """The engine's report (docs/report.md) for one training history.

    `history` maps metric names to their values, one per epoch (or per evaluation): Keras'
    `{"loss", "val_loss", "accuracy", "val_accuracy"}`, PyTorch habits' `{"train_loss",
    "val_loss"}`, Lightning's `train_loss_epoch`; any name the CLI recognises in a logdir works
    the same way. A Keras `History` object (anything with a `.history` dict) is accepted too.
    Values may be floats, numpy or tensor scalars; `None` means "not logged at that step" and is
    skipped, while NaN and infinities are kept (the engine reports them). Keys whose values are
    not numbers (strings, nested lists) are left out.

    `steps` gives each value's step: one sequence for every key, or a mapping key -> sequence
    (for a validation list logged less often than the training one). By default the values of
    each key are at steps 0, 1, 2... (the epoch index, as Keras' TensorBoard callback logs
    epochs). All keys form one run named `run`, so the report has (at most) one run group.
    """
    return diagnose(history_series(history, steps=steps, run=run), settings)


def history_series(history: Any, *, steps: Steps = None, run: str = "run") -> List[Series]:
    """One `Series` per numeric key of `history` (see `diagnose_history`)."""
    mapping = history_mapping(history)
    out = []
    for key, values in mapping.items():
        floats = as_floats(values)
        if floats is None or not isinstance(key, str):
            continue
        key_steps = steps_of(key, len(floats), steps)
        kept = [(s, v) for s, v in zip(key_steps, floats) if v is not None]
        out.append(make_series(run, key, [s for s, _ in kept], [v for _, v in kept]))
    return out


def history_mapping(history: Any) -> Mapping:
    """The dict of a history: the object itself, or its `.history` (Keras' `History`)."""
    if isinstance(history, Mapping):
        return history
    inner = getattr(history, "history", None)
    if isinstance(inner, Mapping):
        return inner
    raise TypeError(
        f"expected a dict of metric name -> values (or a Keras History), got {type(history).__name__}"
    )


def as_floats(values: Any) -> Optional[List[Optional[float]]]:
    """The values as floats (None kept for "not logged"), or None when they are not numbers."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return None
    out: List[Optional[float]] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        try:
            out.append(float(v))  # floats, ints, numpy and 0-d tensor scalars
        except (TypeError, ValueError):
            return None
    return out


def steps_of(key: str, n: int, steps: Steps) -> List[int]:
    """The steps of `n` values of `key`: explicit (shared or per key), else 0..n-1."""
    if isinstance(steps, Mapping):
        steps = steps.get(key)
    if steps is None:
        return list(range(n))
    steps = [int(s) for s in steps]
    if len(steps) != n:
        raise ValueError(f"{key!r} has {n} values but {len(steps)} steps")
    return steps


# --------------------------------------------------------------------------------------------
# Reading the report of one history
# --------------------------------------------------------------------------------------------


def run_entry(report: dict) -> Optional[dict]:
    """The report's one run group entry, or None when no key named a recognised metric."""
    runs = report.get("runs") or []
    return runs[0] if runs else None


def verdict(report: dict) -> Optional[str]:
    """The run's trend verdict (`converged`, `overfitting`, ...); None when a `nan` or `blowup`
    ended the run or nothing could be judged."""
    entry = run_entry(report)
    return None if entry is None else entry["verdict"]


def events(report: dict) -> List[dict]:
    """The run's event findings (`nan`, `blowup`, `spikes`), most severe first."""
    entry = run_entry(report)
    return [] if entry is None else [f for f in entry["findings"] if f["code"] in EVENTS]


def find_finding(report: dict, codes: Iterable[str]) -> Optional[dict]:
    """The first (most severe) finding whose code is one of `codes`, or None."""
    wanted = set(codes)
    entry = run_entry(report)
    if entry is None:
        return None
    return next((f for f in entry["findings"] if f["code"] in wanted), None)


def best_step(report: dict) -> Optional[int]:
    """The best checkpoint's step when the run overfits: the step of the best validation point
    (the overfitting finding's `step`); None when the run does not overfit."""
    finding = find_finding(report, ("overfitting",))
    return None if finding is None else finding["step"]


def check_codes(codes: Iterable[str]) -> Tuple[str, ...]:
    """`codes` as a tuple, refusing any that is not a finding code (a typo would never stop)."""
    if isinstance(codes, str):
        codes = (codes,)
    codes = tuple(codes)
    unknown = [c for c in codes if c not in SEVERITY]
    if unknown:
        raise ValueError(f"unknown finding code(s) {unknown}; known: {', '.join(SEVERITY)}")
    return codes


def verdict_line(report: dict) -> str:
    """One line: the verdict (or what ended the run) and the events, e.g.
    `overfitting (warning); events: spikes`."""
    entry = run_entry(report)
    if entry is None:
        return "no recognised metric (a loss or an accuracy) in the history"
    fatal = next((f["code"] for f in entry["findings"] if f["code"] in FATAL_EVENTS), None)
    died = entry["verdict"] is None and fatal is not None
    head = f"died: {fatal}" if died else (entry["verdict"] or "no verdict")
    head += f" ({entry['status']})"
    others = [f["code"] for f in events(report) if not (died and f["code"] == fatal)]
    return head + (f"; events: {', '.join(others)}" if others else "")


def verdict_markdown(report: dict) -> str:
    """The run's diagnosis as Markdown for a TensorBoard text summary: the verdict line, then
    each finding's title, summary and first piece of advice."""
    lines = [f"**lossdoctor: {verdict_line(report)}**"]
    entry = run_entry(report)
    for f in (entry or {}).get("findings", []):
        lines.append("")
        lines.append(f"- **{f['code']}** ({f['severity']}): {f['title']}. {f['summary']}")
        if f.get("advice"):
            lines.append(f"  - {f['advice'][0]}")
    return "\n".join(lines)


def finite(value: Any) -> bool:
    """A number that is neither NaN nor infinite."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
