"""Group runs and tags into run groups with train/validation pairs of the same metric."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from tb_lossdoctor.naming import (
    AGGREGATION_PREFERENCE,
    TagMeaning,
    group_key,
    is_penalty,
    parse_tag,
    split_of_run,
)
from tb_lossdoctor.series import Series
from tb_lossdoctor.settings import Settings
from tb_lossdoctor.step_units import aligned_pair

__all__ = ["Curve", "MetricPair", "RunGroup", "group_key", "group_series", "run_tags"]


@dataclass(frozen=True)
class Curve:
    series: Series
    meaning: TagMeaning
    role: str  # "train" | "val"


@dataclass
class MetricPair:
    """The training and validation curves of one metric in one run group (either may be None)."""

    metric: str
    direction: str  # "min" | "max"
    train: Optional[Curve] = None
    val: Optional[Curve] = None

    @property
    def curves(self) -> List[Curve]:
        return [c for c in (self.train, self.val) if c is not None]

    @property
    def is_loss(self) -> bool:
        return self.direction == "min"

    @property
    def is_penalty(self) -> bool:
        """A penalty term of the loss (a KL term, a regulariser): it may rise while the model learns."""
        return self.is_loss and is_penalty(self.metric)


@dataclass
class RunGroup:
    name: str
    pairs: List[MetricPair] = field(default_factory=list)  # primary metric first
    learning_rate: Optional[Series] = None
    ignored: List[Series] = field(default_factory=list)

    @property
    def curves(self) -> List[Curve]:
        return [c for p in self.pairs for c in p.curves]


def group_series(series: Iterable[Series]) -> List[RunGroup]:
    """Sort every series into its run group and pick, per metric, one train and one val curve."""
    series = list(series)
    tags = run_tags(series)
    by_group: Dict[str, List[Tuple[Series, TagMeaning]]] = {}
    for s in series:
        group, run_role, run_rank = split_of_run(s.run, tags[s.run])
        by_group.setdefault(group, []).append((s, parse_tag(s.tag, run_role, run_rank)))
    return [_build_group(name, members) for name, members in sorted(by_group.items())]


def run_tags(series: Iterable[Series]) -> Dict[str, Tuple[str, ...]]:
    """{run: its tags}: what a run holds decides whether its folder name is a split."""
    out: Dict[str, List[str]] = {}
    for s in series:
        out.setdefault(s.run, []).append(s.tag)
    return {run: tuple(sorted(tags)) for run, tags in out.items()}


def _build_group(name: str, members: List[Tuple[Series, TagMeaning]]) -> RunGroup:
    group = RunGroup(name)
    candidates: Dict[str, List[Tuple[Series, TagMeaning]]] = {}
    for s, meaning in members:
        if meaning.kind == "lr":
            if group.learning_rate is None or len(s) > len(group.learning_rate):
                group.learning_rate = s
        elif meaning.kind == "metric":
            candidates.setdefault(meaning.metric, []).append((s, meaning))
        else:
            group.ignored.append(s)
    for metric, found in candidates.items():
        group.pairs.append(_pair_metric(metric, found))
    group.pairs.sort(key=_metric_priority)
    return group


def _metric_priority(pair: MetricPair) -> tuple:
    """Metrics logged for both splits before lone curves (the train/validation table needs
    both, and enough validation points to read: not a test score logged once at the end); then
    losses before accuracy-like metrics, penalty terms after the other losses, `loss` first."""
    return (not _both_splits(pair), not pair.is_loss, pair.is_penalty, pair.metric != "loss", pair.metric)


def _both_splits(pair: MetricPair) -> bool:
    if pair.train is None or pair.val is None:
        return False
    return int(np.isfinite(pair.val.series.values).sum()) >= Settings.min_val_points


def _pair_metric(metric: str, found: List[Tuple[Series, TagMeaning]]) -> MetricPair:
    train = [(s, m) for s, m in found if m.role == "train"]
    val = [(s, m) for s, m in found if m.role == "val"]
    unlabelled = [(s, m) for s, m in found if not m.role]
    pair = MetricPair(metric, found[0][1].direction)
    # A curve with no split word takes the training slot: Keras' `loss` + `val_loss` names the
    # training loss so. An accuracy-like metric with no split word (`bbox/AP`, `metrics/mAP50(B)`)
    # is usually an evaluation metric: it keeps no role rather than a wrong one.
    role = "train" if train or pair.is_loss else ""
    train = train or unlabelled
    if val:
        best_val = min(val, key=lambda c: (c[1].val_rank, _aggregation_rank(c[1]), -len(c[0])))
        pair.val = Curve(best_val[0], best_val[1], "val")
    if train:
        best_train = min(train, key=lambda c: _train_preference(c, pair.val))
        pair.train = Curve(best_train[0], best_train[1], role)
    if pair.train is not None and pair.val is not None:
        # Batches on one axis and epochs on the other: judged over the same steps only once
        # they share one axis (mapped by wall time).
        t, v = aligned_pair(pair.train.series, pair.val.series)
        if t is not pair.train.series:
            pair.train = replace(pair.train, series=t)
        if v is not pair.val.series:
            pair.val = replace(pair.val, series=v)
    return pair


def _aggregation_rank(meaning: TagMeaning) -> int:
    try:
        return AGGREGATION_PREFERENCE.index(meaning.aggregation)
    except ValueError:
        return len(AGGREGATION_PREFERENCE)


def _train_preference(candidate: Tuple[Series, TagMeaning], val: Optional[Curve]) -> tuple:
    """Prefer the training curve in the validation curve's step units and aggregation."""
    s, meaning = candidate
    if val is None:
        return (0, 0, _aggregation_rank(meaning), -len(s))
    same_tag = s.tag != val.series.tag
    overlap = -_step_overlap(s, val.series)
    same_aggregation = meaning.aggregation != val.meaning.aggregation
    return (same_tag, overlap, same_aggregation, _aggregation_rank(meaning), -len(s))


def _step_overlap(a: Series, b: Series) -> float:
    """Fraction of the union of two step ranges that both cover (0 when either is empty)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    lo, hi = max(a.steps[0], b.steps[0]), min(a.steps[-1], b.steps[-1])
    union = max(a.steps[-1], b.steps[-1]) - min(a.steps[0], b.steps[0])
    if union <= 0:
        return 1.0 if lo <= hi else 0.0
    return max(0.0, float(hi - lo) / float(union))
