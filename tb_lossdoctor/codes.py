"""The finding codes: their severity and kind, in one place (the report, rules and views read it)."""

from __future__ import annotations

SEVERITY = {
    "nan": "error", "blowup": "error", "diverging": "error", "not_learning": "error",
    "oscillation": "warning", "overfitting": "warning", "data_problem": "warning",
    "plateau": "warning", "slow_convergence": "warning", "spikes": "warning",
    "still_learning": "info", "converged": "info", "too_early": "info",
}

# Things that happened at a step; every other code is a trend verdict (one per run group).
EVENTS = ("nan", "blowup", "spikes")
TREND_VERDICTS = tuple(code for code in SEVERITY if code not in EVENTS)
# Events that end a run: a trend verdict on what came before would be beside the point.
FATAL_EVENTS = ("nan", "blowup")
