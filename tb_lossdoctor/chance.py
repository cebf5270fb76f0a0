"""Chance level: the loss of a classifier that guesses uniformly over K classes is ln K.

A cross-entropy pinned at ln K (or an accuracy at 1/K) learned nothing, whatever its drift.
The number of classes is never known, so a level is called chance only when two readings agree
on the same K: the loss started there and is still there (a network initialised to guess
uniformly that never left it), or the loss sits there while a sibling accuracy sits at 1/K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

from tb_lossdoctor.settings import Settings


@dataclass(frozen=True)
class ChanceLevel:
    classes: int
    value: float  # ln(classes)

    def to_evidence(self) -> dict:
        return {"value": round(self.value, 4), "classes": self.classes}

    def describe(self) -> str:
        return f"ln {self.classes} = {self.value:.4g}: a uniform guess over {self.classes} classes"


def near(level: float, target: float, tolerance: float) -> bool:
    """Within `tolerance` (a fraction of `target`) of `target`."""
    return math.isfinite(level) and abs(level - target) <= tolerance * abs(target)


def chance_level(
    start: float,
    ends: Iterable[float],
    accuracy_end: Optional[float],
    settings: Settings,
) -> Optional[ChanceLevel]:
    """The chance level a loss sits at, or None.

    `start` is the loss's starting level, `ends` its end levels (training and validation),
    `accuracy_end` the end level of a sibling accuracy in [0, 1] if the run logs one.
    """
    ends = [e for e in ends if math.isfinite(e)]
    if not ends or not math.isfinite(start):
        return None
    classes = int(round(math.exp(min(ends[0], 50.0))))
    if not 2 <= classes <= settings.chance_max_classes:
        return None
    value = math.log(classes)
    at_chance = all(near(e, value, settings.chance_tolerance) for e in ends)
    started_there = at_chance and near(start, value, settings.chance_tolerance)
    # A constant guess other than the uniform one scores ln K or worse: with an accuracy that
    # agrees on K, the loss may sit somewhat above ln K, never below it.
    accuracy_agrees = (
        accuracy_end is not None
        and near(accuracy_end, 1.0 / classes, settings.chance_accuracy_tolerance)
        and all(value * (1 - settings.chance_tolerance) <= e <= value * (1 + settings.chance_accuracy_tolerance)
                for e in ends)
    )
    return ChanceLevel(classes, value) if started_there or accuracy_agrees else None
