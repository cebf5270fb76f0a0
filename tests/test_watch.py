"""Following live runs: `lossdoctor watch` and the verdict tracker behind it.

Real writers append to real event files while TensorBoard's readers (its data server in reload
mode, or its Python multiplexer) follow them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SimpleValueWriter, decaying, wait_until
from tb_lossdoctor import watch
from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.live import VerdictTracker
from tb_lossdoctor.series import make_series

ROOT = Path(__file__).resolve().parents[1]


def _needs_server(reader):
    if reader == "server":
        from tb_lossdoctor.readers import data_server

        try:
            data_server.server_binary_path()
        except data_server.DataServerError:
            pytest.skip("no TensorBoard data server binary")


# -- the tracker on report dicts -------------------------------------------------------------------


def _run(verdict, points, events=(), severity="info"):
    findings = [{"code": verdict, "severity": severity, "title": verdict, "summary": verdict}] if verdict else []
    findings += [{"code": e, "severity": "error", "title": e, "summary": e} for e in events]
    status = "error" if events else ("ok" if severity == "info" else severity)
    return {"run": "r", "status": status, "verdict": verdict, "findings": findings,
            "series": [{"run": "r", "tag": "loss", "points": points}]}


def test_a_new_verdict_shows_after_three_updates_with_new_data():
    tracker = VerdictTracker(confirm=3)
    _, changes = tracker.update([_run("still_learning", 10)])
    assert [c.first_seen for c in changes] == [True]
    for points in (11, 12):
        shown, changes = tracker.update([_run("converged", points)])
        assert not changes and shown[0]["verdict"] == "still_learning"
        assert shown[0]["findings"][0]["evidence"]["pending"]["verdict"] == "converged"
    shown, changes = tracker.update([_run("converged", 13)])
    assert [(c.before, c.after) for c in changes] == [("still_learning", "converged")]


def test_the_same_data_again_is_no_new_evidence():
    tracker = VerdictTracker(confirm=2)
    tracker.update([_run("still_learning", 10)])
    tracker.update([_run("converged", 11)])
    for _ in range(5):  # polls that find nothing new
        _, changes = tracker.update([_run("converged", 11)])
        assert not changes


def test_alternating_verdicts_never_change_what_is_shown():
    tracker = VerdictTracker(confirm=3)
    tracker.update([_run("converged", 0)])
    for points in range(1, 30):
        shown, changes = tracker.update([_run("still_learning" if points % 2 else "converged", points)])
        assert not changes and shown[0]["verdict"] == "converged"


def test_events_and_deaths_show_at_once():
    tracker = VerdictTracker(confirm=3)
    tracker.update([_run("converged", 10)])
    shown, changes = tracker.update([_run(None, 11, events=("nan",))])
    assert [(c.before, c.after, c.new_events, c.severity) for c in changes] == [("converged", None, ["nan"], "error")]
    assert shown[0]["status"] == "error"


# -- a writer appends while the readers follow ---------------------------------------------------


def _hovering_curve(n=80, seed=6):
    """A loss that still creeps down at the edge of significance: judged point by point, its
    verdict swings between still_learning and converged."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    train = 0.3 + 2 * np.exp(-steps / 8) - 0.005 * steps + 0.02 * rng.standard_normal(n)
    val = 0.4 + 2 * np.exp(-steps / 8) - 0.005 * steps + 0.02 * rng.standard_normal(n)
    return steps, train, val


def _raw_verdicts(steps, train, val, start):
    out = []
    for k in range(start, steps.size + 1):
        series = [make_series("h", "train_loss", steps[:k], train[:k]), make_series("h", "val_loss", steps[:k], val[:k])]
        out.append(diagnose(series)["runs"][0]["verdict"])
    return out


@pytest.mark.parametrize("reader", ["python", "server"])
def test_a_run_hovering_at_a_threshold_does_not_flip_flop(tmp_path, reader):
    from tensorboard import context as tb_context

    from tb_lossdoctor.report_cache import ReportCache

    _needs_server(reader)
    steps, train, val = _hovering_curve()
    start = 40
    raw = _raw_verdicts(steps, train, val, start)
    flips = sum(a != b for a, b in zip(raw, raw[1:]))
    assert flips >= 8, raw  # the curve does hover: judged point by point it keeps flipping

    writer = SimpleValueWriter(tmp_path / "h")
    writer.add("train_loss", train[:start]).add("val_loss", val[:start])
    cache, tracker, ctx = ReportCache(), VerdictTracker(), tb_context.RequestContext()
    printed = []
    with watch.follow(str(tmp_path), reader, interval=1.0) as follower:
        for k in range(start, steps.size + 1):
            if k > start:  # one more epoch written
                writer.add("train_loss", train[k - 1:k], start_step=k - 1).add("val_loss", val[k - 1:k], start_step=k - 1)

            def caught_up():
                follower.refresh()
                rep = json.loads(cache.report_json(follower.provider, ctx, "", sample_limit=None))
                return rep if rep["runs"] and rep["runs"][0]["series"][0]["points"] == k else None

            report = wait_until(caught_up, timeout=30)
            assert report, f"the {reader} reader never saw epoch {k}"
            _, changes = tracker.update(report["runs"])
            printed += [(k, c.before, c.after) for c in changes if not c.first_seen]
    assert len(printed) <= 3, (printed, raw)
    # What is shown changes no faster than the hysteresis allows: each verdict shown holds for
    # at least three updates before the next change.
    assert all(b[0] - a[0] >= 3 for a, b in zip(printed, printed[1:])), printed


def _start_watch(logdir, reader, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "tb_lossdoctor", "watch", str(logdir), "--interval", "0.5", "--reader", reader, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )


@pytest.mark.parametrize("reader", ["python", "server"])
def test_until_error_exits_1_when_a_nan_is_written_and_not_before(tmp_path, reader):
    _needs_server(reader)
    writer = SimpleValueWriter(tmp_path / "job")
    writer.add("train_loss", decaying(40, 2.0, 0.3, noise=0.01, seed=1))
    SimpleValueWriter(tmp_path / "other").add("train_loss", decaying(40, 2.0, 0.3, noise=0.01, seed=2)).close()
    proc = _start_watch(tmp_path, reader, "--until", "error")
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]  # the two runs as first seen
        assert sorted(line.split()[1] for line in lines) == ["job", "other"], lines
        # Healthy points keep coming: the watcher keeps watching.
        for i in range(3):
            writer.add("train_loss", [0.3 - 0.001 * i], start_step=40 + i)
            time.sleep(1.0)
        assert proc.poll() is None, proc.stderr.read()
        writer.add("train_loss", [float("nan")] * 3, start_step=43)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        writer.close()
    assert proc.returncode == 1, (out, err)
    rest = out.splitlines()
    nan_lines = [line for line in rest if " job " in f" {line} " and "+ nan" in line]
    assert nan_lines and "step 43" in nan_lines[0], rest
    assert "reached error" in rest[-1]


def test_jsonl_prints_one_object_per_change_and_stops_cleanly(tmp_path):
    SimpleValueWriter(tmp_path / "a").add("loss", decaying(30)).close()
    out = subprocess.run(
        [sys.executable, "-m", "tb_lossdoctor", "watch", str(tmp_path), "--format", "jsonl", "--polls", "2",
         "--interval", "0.2", "--reader", "python"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    change = json.loads(line)
    assert change["run"] == "a" and change["first_seen"] and change["to"] == "converged"
    assert "followed" in out.stderr  # the closing summary goes to stderr in jsonl mode


def test_bad_arguments_exit_2(tmp_path):
    for args in (["watch", str(tmp_path / "missing")], ["watch", str(tmp_path), "--run", "("],
                 ["watch", str(tmp_path), "--interval", "0"]):
        proc = subprocess.run([sys.executable, "-m", "tb_lossdoctor", *args], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_ctrl_c_exits_cleanly_with_a_summary(tmp_path):
    import signal

    SimpleValueWriter(tmp_path / "a").add("loss", decaying(30)).close()
    proc = _start_watch(tmp_path, "python")
    try:
        first = proc.stdout.readline()
        assert " a " in f" {first} ", first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "followed" in out and "1 ok" in out and "Traceback" not in err
