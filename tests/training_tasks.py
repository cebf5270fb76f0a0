"""The demo's training tasks as plain numpy data, shared by the callback tests (Keras and
Lightning): the same recipes as demo/generate.py, without importing its TensorFlow."""

from __future__ import annotations

import numpy as np


def teacher_task(n_train, n_val, heavy_sigma=1.5):
    """demo/generate.py's 10-class teacher task with one raw, heavy-tailed (log-normal) feature."""
    teacher = np.random.RandomState(1234)
    w1 = teacher.normal(0, 1.0, (20, 64)) / np.sqrt(20) * 2.5
    b1 = teacher.normal(0, 0.5, 64)
    w2 = teacher.normal(0, 1.0, (64, 10))
    rng = np.random.RandomState(1)

    def make(n):
        x = rng.normal(0, 1, (n, 20)).astype("float32")
        return x, np.argmax(np.tanh(x @ w1 + b1) @ w2, axis=1).astype("int64")

    (x, y), (xv, yv) = make(n_train), make(n_val)
    heavy = np.random.RandomState(7)
    x[:, 0] = np.exp(heavy_sigma * heavy.normal(0, 1, n_train))
    xv[:, 0] = np.exp(heavy_sigma * heavy.normal(0, 1, n_val))
    return (x, y), (xv, yv)


def spirals_task(n_train, n_val, seed, label_noise=0.0, arms=5):
    """demo/generate.py's interleaved spirals (the class is the arm); noisy training labels."""
    rng = np.random.RandomState(seed)

    def make(n, noise):
        y = rng.randint(0, arms, n)
        r = np.sqrt(rng.rand(n))
        theta = y * 2 * np.pi / arms + r * 2 * np.pi
        x = np.stack([r * np.cos(theta), r * np.sin(theta)], 1) + rng.normal(0, 0.04, (n, 2))
        if noise:
            flip = rng.rand(n) < noise
            y = y.copy()
            y[flip] = rng.randint(0, arms, flip.sum())
        return (x / 0.58).astype("float32"), y.astype("int64")

    return make(n_train, label_noise), make(n_val, 0.0)
