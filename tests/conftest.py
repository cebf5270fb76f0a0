"""Shared test fixtures: real event-file writers and the real-world logs (read in place)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REALWORLD = ROOT.parent / "shared" / "realworld"
DEMO_LOGS = ROOT / "demo" / "logs"


def _has_event_files(path: Path) -> bool:
    return path.is_dir() and any(p.name.startswith("events.out.tfevents") for p in path.rglob("*"))


def realworld_labels() -> dict:
    """../shared/realworld/labels.json: {case folder: {must_any, forbid, must_all}} ({} when absent).

    Tests that go through the labelled folders take the list from here, not from the folder."""
    path = REALWORLD / "labels.json"
    if not path.is_file():
        return {}
    with open(path) as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def realworld_dir() -> Path:
    """../shared/realworld (public logs, read in place). Skips when absent, except under CI,
    where the team's shared folder is always laid beside the clone: there, absence is a fault."""
    if not _has_event_files(REALWORLD):
        if os.environ.get("CI") == "true":
            pytest.fail("../shared/realworld is missing under CI: the labelled set must run")
        pytest.skip("../shared/realworld is not present")
    return REALWORLD


@pytest.fixture(scope="session")
def demo_logdir() -> Path:
    """demo/logs of this repository; skips when it has not been generated."""
    if not _has_event_files(DEMO_LOGS):
        pytest.skip("demo/logs has not been generated")
    return DEMO_LOGS


class SimpleValueWriter:
    """torch / tensorboardX style logs: `Summary.Value(simple_value=...)` through TensorBoard's
    own `EventFileWriter`. Keeps the file open so later `add` calls append to the same file."""

    def __init__(self, logdir):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        os.makedirs(logdir, exist_ok=True)
        self._writer = EventFileWriter(str(logdir), flush_secs=3600)
        self._wall = 1_700_000_000.0

    def add(self, tag, values, start_step=0, every=1):
        from tensorboard.compat.proto import event_pb2, summary_pb2

        for i, v in enumerate(values):
            self._wall += 1.0
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(v))])
            self._writer.add_event(
                event_pb2.Event(wall_time=self._wall, step=start_step + i * every, summary=summary)
            )
        self._writer.flush()
        return self

    def close(self):
        self._writer.close()


@pytest.fixture
def simple_value_writer():
    """Factory: `simple_value_writer(logdir)` -> SimpleValueWriter (closed at teardown)."""
    writers = []

    def make(logdir):
        w = SimpleValueWriter(logdir)
        writers.append(w)
        return w

    yield make
    for w in writers:
        w.close()


def write_tf_scalars(logdir, tag, values, start_step=0):
    """TF2 `tf.summary.scalar` (tensor summaries, the Keras callback's format)."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        for i, v in enumerate(values):
            tf.summary.scalar(tag, float(v), step=start_step + i)
    writer.flush()
    writer.close()


def decaying(n, start=2.0, end=0.2, noise=0.0, seed=0):
    """A smooth falling curve (deterministic)."""
    import random

    rng = random.Random(seed)
    return [end + (start - end) * math.exp(-4.0 * i / max(n - 1, 1)) + noise * rng.uniform(-1, 1) for i in range(n)]


def wait_until(predicate, timeout=20.0, interval=0.1):
    """Poll `predicate` until it returns a truthy value (returned) or time runs out (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def cli_report(log_dir):
    """`lossdoctor LOG_DIR --format json`, run as a user would, after training."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tb_lossdoctor", str(log_dir), "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def stop_lines(capsys):
    """The one-line reports a training callback printed when it stopped a run."""
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("lossdoctor:")]
