"""What both callbacks share, free of any framework: collect metrics per step, judge the history
so far with the engine, pick the finding to stop on, and word the stop line."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from tb_lossdoctor.history import (
    DEFAULT_STOP_ON,
    as_floats,
    check_codes,
    diagnose_history,
    find_finding,
)
from tb_lossdoctor.naming import parse_tag
from tb_lossdoctor.settings import Settings


class HistoryMonitor:
    """A growing training history (metric name -> steps and values) and its latest diagnosis.

    `stop_on` lists the finding codes that stop training (`"overfitting"` included when wanted).
    """

    def __init__(
        self,
        stop_on: Iterable[str] = DEFAULT_STOP_ON,
        *,
        run: str = "run",
        settings: Optional[Settings] = None,
    ) -> None:
        self.stop_on: Tuple[str, ...] = check_codes(stop_on)
        self.run = run
        self.settings = settings
        self.steps: Dict[str, List[int]] = {}
        self.values: Dict[str, List[float]] = {}
        self.report: Optional[dict] = None

    def reset(self) -> None:
        """Forget the history (a new training run)."""
        self.steps, self.values, self.report = {}, {}, None

    def record(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Add the numeric entries of `metrics` at `step` (other entries are ignored)."""
        for key, value in metrics.items():
            number = as_floats([value]) if isinstance(key, str) else None
            if not number or number[0] is None:
                continue
            self.steps.setdefault(key, []).append(int(step))
            self.values.setdefault(key, []).append(number[0])

    def judge(self) -> dict:
        """Diagnose the history so far; the report is kept in `self.report`."""
        self.report = diagnose_history(self.values, steps=self.steps, run=self.run, settings=self.settings)
        return self.report

    def stop_finding(self) -> Optional[dict]:
        """The finding of the latest report that should stop training, or None."""
        return None if self.report is None else find_finding(self.report, self.stop_on)


def is_validation_metric(name: str) -> bool:
    """Does this metric name denote a validation curve (`val_loss`, `valid/acc`, `eval_loss`)?"""
    return parse_tag(name).role == "val"


def improved(value: float, best: Optional[float], direction: str) -> bool:
    """Is `value` strictly better than `best` for a metric of that direction ("min"/"max")?"""
    if value != value or value in (float("inf"), float("-inf")):
        return False
    if best is None:
        return True
    return value < best if direction != "max" else value > best


def direction_of(name: str) -> str:
    """"max" for accuracy-like metric names, else "min" (losses)."""
    return "max" if parse_tag(name).direction == "max" else "min"


def stop_line(finding: dict, where: str, restored: str = "") -> str:
    """The one line printed when a callback stops training, e.g.
    `lossdoctor: stopped training at epoch 12 (step 12): overfitting: ...`."""
    line = f"lossdoctor: stopped training at {where}: {finding['code']}: {finding['title']}"
    if finding["code"] == "overfitting" and finding.get("step") is not None:
        line += f"; best checkpoint at step {finding['step']}"
    return line + (f"; {restored}" if restored else "")
