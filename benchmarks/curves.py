"""Seeded, realistic training curves shared by the logdir generator and the engine benchmark.

Each run gets one *kind* (healthy or pathological) and a *layout* (how its tags are named and
how often they are logged). Everything is numpy and deterministic for a given (seed, run index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

# kind -> weight of the mix (healthy first). Weights are normalised.
KINDS: Dict[str, float] = {
    "converging": 0.40,    # falls then flattens, noisy; val slightly above train
    "overfitting": 0.18,   # train keeps falling, val turns up after its best
    "nan": 0.08,           # training dies of NaN part-way
    "blowup": 0.08,        # loss jumps far above its best and stays there
    "flat": 0.13,          # not learning: constant level plus noise
    "oscillating": 0.13,   # big swings around a level, no downward trend
}
LAYOUTS: Dict[str, float] = {
    "torch": 0.75,  # one run folder: train_loss per step, val_loss every k steps, train_acc, val_acc
    "keras": 0.25,  # X/train + X/validation folders, epoch_loss / epoch_accuracy per epoch
}


@dataclass
class RunSpec:
    index: int
    name: str
    kind: str
    layout: str


def _pick(rng: np.random.Generator, table: Dict[str, float]) -> str:
    names = list(table)
    p = np.array([table[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def run_spec(seed: int, index: int) -> RunSpec:
    rng = np.random.default_rng([seed, index, 0])
    kind = _pick(rng, KINDS)
    layout = _pick(rng, LAYOUTS)
    return RunSpec(index, f"exp{index // 100:03d}/run_{index:05d}_{kind}", kind, layout)


def loss_curves(kind: str, n: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """(train, val) loss curves of length n on the same step grid, for a run of `kind`."""
    x = np.linspace(0.0, 1.0, n)
    start = rng.uniform(1.5, 4.0)
    floor = rng.uniform(0.05, 0.4)
    tau = rng.uniform(0.08, 0.25)
    noise = rng.uniform(0.01, 0.04) * (start - floor)
    base = floor + (start - floor) * np.exp(-x / tau)
    train = base + noise * rng.standard_normal(n)
    gap = rng.uniform(0.02, 0.15)
    val = base * (1 + gap) + 0.5 * noise * rng.standard_normal(n)
    if kind == "overfitting":
        turn = rng.uniform(0.3, 0.55)
        val = val + np.clip(x - turn, 0, None) * rng.uniform(0.8, 2.0) * (start - floor)
    elif kind == "nan":
        at = int(n * rng.uniform(0.4, 0.8))
        train[at:] = np.nan
        val[at:] = np.nan
    elif kind == "blowup":
        at = int(n * rng.uniform(0.5, 0.8))
        jump = rng.uniform(20, 200) * start
        train[at:] = jump + noise * 50 * rng.standard_normal(n - at)
        val[at:] = jump * 1.05 + noise * 50 * rng.standard_normal(n - at)
    elif kind == "flat":
        level = start * rng.uniform(0.9, 1.0)
        train = level + noise * rng.standard_normal(n)
        val = level * (1 + gap) + noise * rng.standard_normal(n)
    elif kind == "oscillating":
        level = start * rng.uniform(0.5, 0.8)
        period = rng.uniform(0.02, 0.1)
        amp = rng.uniform(0.3, 0.6) * level
        swing = amp * np.sin(2 * math.pi * x / period) + noise * rng.standard_normal(n)
        train = level + swing
        val = level * (1 + gap) + swing * 0.8
    return train, val


def accuracy_from_loss(loss: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible accuracy mirrored from a loss curve, in [0, 1] (NaN stays NaN)."""
    finite = loss[np.isfinite(loss)]
    top = finite.max() if finite.size else 1.0
    acc = 1.0 - 0.9 * np.clip(loss / (top + 1e-12), 0, 1) + 0.005 * rng.standard_normal(loss.size)
    return np.clip(acc, 0, 1) if np.all(np.isfinite(acc)) else np.where(np.isfinite(acc), np.clip(acc, 0, 1), acc)


# One series to write: (run folder relative to the logdir, tag, steps, values).
SeriesData = Tuple[str, str, np.ndarray, np.ndarray]


def run_series(seed: int, index: int, tags: int, points: int, val_every: int) -> Tuple[RunSpec, List[SeriesData]]:
    """All series of one run. `tags` is the number of tags per run (2: losses, 4: + accuracies,
    5: + learning rate, more: + auxiliary metrics); `points` the per-step tags' length;
    torch-layout validation tags are logged every `val_every` steps over the same range."""
    spec = run_spec(seed, index)
    rng = np.random.default_rng([seed, index, 1])
    out: List[SeriesData] = []
    if spec.layout == "torch":
        train, val_full = loss_curves(spec.kind, points, rng)
        steps = np.arange(points, dtype=np.int64)
        vsteps = steps[::val_every]
        val = val_full[::val_every]
        names = [("train_loss", steps, train), ("val_loss", vsteps, val),
                 ("train_acc", steps, accuracy_from_loss(train, rng)),
                 ("val_acc", vsteps, accuracy_from_loss(val, rng))]
        out = [(spec.name, t, s, v) for t, s, v in names[: min(tags, 4)]]
        folder_train = folder_val = spec.name
    else:
        train, val = loss_curves(spec.kind, points, rng)
        steps = np.arange(points, dtype=np.int64)
        folder_train, folder_val = spec.name + "/train", spec.name + "/validation"
        names = [(folder_train, "epoch_loss", train), (folder_val, "epoch_loss", val),
                 (folder_train, "epoch_accuracy", accuracy_from_loss(train, rng)),
                 (folder_val, "epoch_accuracy", accuracy_from_loss(val, rng))]
        out = [(f, t, steps, v) for f, t, v in names[: min(tags, 4)]]
    steps = np.arange(points, dtype=np.int64)
    if tags >= 5:
        lr = 0.1 * 0.5 ** (steps // max(points // 4, 1))
        out.append((folder_train, "learning_rate" if spec.layout == "torch" else "epoch_learning_rate",
                    steps, lr.astype(float)))
    for k in range(max(0, tags - 5)):
        out.append((folder_train, f"aux/metric_{k}", steps, rng.standard_normal(points).cumsum()))
    return spec, out
