"""Live logdirs and many users.

Live: a real writer subprocess (TensorBoard's `EventFileWriter`, flushing) appends to a run while
the plugin serves it, through the Python multiplexer (reloaded by the test) and the Rust data
server (`--reload_interval 1`). Every report seen is valid, and is exactly the engine's diagnosis
of a prefix of what was written (no half-read record, no point out of order, never a finding the
written data does not support); point counts only grow; once NaN is reported it stays. The writer
is then killed in the middle of a record: the run keeps its last diagnosis.

Load: 50 concurrent `report` requests on a 1,000-run logdir all succeed with identical bodies, the
cache stays within its limits, and latency percentiles are printed (no timed assertion).
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from werkzeug.test import Client

from conftest import wait_until
from test_plugin_http import BASE, TB, parse_report, without_time

pytestmark = pytest.mark.timeout(300)

WALL0 = 1_700_000_000.0

# The writer: commands on stdin, one reply line per command on stdout.
#   write N    N more points, then flush
#   stream N   N points one at a time, flushing after each (while the test polls)
#   nan N      N NaN points, then flush
#   partial    flush, then append the first half of one more record to the file (a crash mid-write)
WRITER = r"""
import io, math, os, sys, time, types, glob
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))  # no TF import
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.summary.writer.record_writer import RecordWriter

logdir = sys.argv[1]
WALL0 = float(sys.argv[2])

def value(step):
    return 0.2 + 1.8 * math.exp(-step / 60.0) + 0.01 * math.sin(step * 1.3)

def event(step, v):
    s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=v)])
    return event_pb2.Event(wall_time=WALL0 + step, step=step, summary=s)

w = EventFileWriter(logdir, flush_secs=3600)
step = 0
print("ready", flush=True)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    n = int(arg or 0)
    if cmd in ("write", "stream", "nan"):
        for _ in range(n):
            w.add_event(event(step, float("nan") if cmd == "nan" else value(step)))
            step += 1
            if cmd == "stream":
                w.flush()
                time.sleep(0.004)
        w.flush()
    elif cmd == "partial":
        w.flush()
        buf = io.BytesIO()
        RecordWriter(buf).write(event(step, value(step)).SerializeToString())
        data = buf.getvalue()
        path = glob.glob(os.path.join(logdir, "events.out.tfevents*"))[0]
        with open(path, "ab") as f:
            f.write(data[: len(data) // 2])
    print("ok", step, flush=True)
"""


def written_value(step):
    """What the writer wrote at `step` (simple_value is float32), before the NaN phase."""
    return float(np.float32(0.2 + 1.8 * math.exp(-step / 60.0) + 0.01 * math.sin(step * 1.3)))


class Writer:
    def __init__(self, run_dir):
        os.makedirs(run_dir, exist_ok=True)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(run_dir), repr(WALL0)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()
        self.steps = 0

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def reply(self):
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "ok", self.proc.stderr.read()
        self.steps = int(line[1])
        return self.steps

    def do(self, cmd):
        self.send(cmd)
        return self.reply()

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def expected_run(n, nan_from):
    """The engine's report entry for the first `n` points written (NaN from step `nan_from`)."""
    from tb_lossdoctor import report as report_mod
    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.series import make_series

    steps = np.arange(n)
    values = [written_value(s) if s < nan_from else float("nan") for s in steps]
    rep = diagnose([make_series("live", "loss", steps, values, WALL0 + steps)])
    rep = json.loads(report_mod.dumps(rep))
    return rep["runs"][0] if rep["runs"] else None


class Checker:
    """Checks every report seen while the writer runs."""

    def __init__(self, tb):
        self.tb = tb
        self.last_points = 0
        self.saw_nan = False
        self.seen_codes = []
        self.reports = 0
        self.nan_from = 10**9

    def check(self, resp):
        rep = parse_report(resp)
        self.reports += 1
        runs = {r["run"]: r for r in rep["runs"]}
        if "live" not in runs:
            assert self.last_points == 0, "the live run disappeared"
            return None
        run = runs["live"]
        [series] = run["series"]
        n = series["points"]
        assert n >= self.last_points, "points went backwards: %d after %d" % (n, self.last_points)
        self.last_points = n
        expected = expected_run(n, self.nan_from)
        assert run == expected, "the report is not the diagnosis of the first %d points written" % n
        codes = [f["code"] for f in run["findings"]]
        if self.saw_nan:
            assert "nan" in codes, "NaN was reported, then forgotten: %s" % codes
        self.saw_nan = self.saw_nan or "nan" in codes
        if not self.seen_codes or self.seen_codes[-1][1] != codes:
            self.seen_codes.append((n, codes))
        return run


def _reload(tb):
    if tb.multiplexer is not None:
        tb.multiplexer.AddRunsFromDirectory(tb.flags.logdir)
        tb.multiplexer.Reload()


def _max_step(tb):
    ts = tb.listing().get("live", {}).get("loss")
    return ts.max_step if ts is not None else -1


def _settle(tb, last_step):
    """Reload (or wait for the data server's reload) until the provider holds `last_step`."""
    def caught_up():
        _reload(tb)
        return _max_step(tb) == last_step

    assert wait_until(caught_up, timeout=30, interval=0.05), "the provider never saw step %d" % last_step


@pytest.mark.parametrize("kind", ["python", "rust"])
def test_live_writer(tmp_path, kind):
    logdir = tmp_path / "logs"
    writer = Writer(logdir / "live")
    tb = TB(logdir, kind)
    checker = Checker(tb)
    try:
        # A first few points: too early to judge.
        writer.do("write 3")
        _settle(tb, 2)
        run = checker.check(tb.report())
        assert run and run["series"][0]["points"] == 3
        assert "too_early" in [f["code"] for f in run["findings"]]

        # Stream points while polling as fast as the plugin answers, reloading concurrently.
        writer.send("stream 250")
        done = threading.Event()
        replies = []
        reader = threading.Thread(target=lambda: (replies.append(writer.reply()), done.set()))
        reader.start()
        while not done.is_set():
            _reload(tb)
            checker.check(tb.report())
        reader.join()
        _settle(tb, writer.steps - 1)
        checker.check(tb.report())
        assert checker.last_points == 253

        writer.do("write 150")
        _settle(tb, writer.steps - 1)
        run = checker.check(tb.report())
        assert "too_early" not in [f["code"] for f in run["findings"]]
        settled = [f["code"] for f in run["findings"]]

        # The loss becomes NaN: reported, and it stays reported.
        checker.nan_from = writer.steps
        writer.do("nan 20")
        _settle(tb, writer.steps - 1)
        run = checker.check(tb.report())
        assert "nan" in [f["code"] for f in run["findings"]]
        last = tb.report()
        checker.check(last)

        # The writer dies in the middle of a record: the run keeps its last diagnosis.
        writer.do("partial")
        writer.kill()
        deadline = time.monotonic() + (3.0 if kind == "rust" else 0.5)  # two data server reloads
        while time.monotonic() < deadline:
            _reload(tb)
            checker.check(tb.report())
            time.sleep(0.1)
        final = parse_report(tb.report())
        assert without_time(final) == without_time(parse_report(last))
        assert checker.last_points == writer.steps == 423
        print("\n[%s] %d reports checked; finding codes by point count: %s; settled before NaN: %s"
              % (kind, checker.reports, checker.seen_codes, settled))
        assert checker.reports > 5
    finally:
        writer.kill()
        tb.close()


# -- load ----------------------------------------------------------------------------------------

N_RUNS, N_POINTS = 1000, 200
N_CLIENTS = 50


def _shapes():
    """Ten curve shapes (healthy, overfitting, NaN, flat, ...): two tags each, 200 points."""
    rng = np.random.default_rng(0)
    x = np.arange(N_POINTS)
    base = 0.2 + 1.8 * np.exp(-x / 40.0)
    noise = lambda s: s * rng.standard_normal(N_POINTS)  # noqa: E731
    shapes = [
        (base + noise(0.01), base + 0.05 + noise(0.01)),
        (base + noise(0.01), np.minimum(base, 0.6) + np.maximum(0, x - 80) * 0.004),
        (np.where(x < 150, base, np.nan), np.where(x < 150, base + 0.1, np.nan)),
        (np.full(N_POINTS, 0.7) + noise(0.001), np.full(N_POINTS, 0.72) + noise(0.001)),
        (2.0 - x * 0.005, 2.05 - x * 0.005),
        (base + 0.3 * np.sin(x) ** 8, base + 0.1),
        (base * 100, base * 100 + 3),
        (-base, -base + 0.05),
        (np.round(base * 10), np.round(base * 10) + 1),
        (base + noise(0.2), base + noise(0.2)),
    ]
    return shapes


@pytest.fixture(scope="module")
def big_logdir(tmp_path_factory):
    """1,000 runs x 2 tags x 200 points: ten event files written with EventFileWriter, each
    copied to 100 run folders (fast, and the runs still differ in shape)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    root = tmp_path_factory.mktemp("big")
    templates = []
    for i, (train, val) in enumerate(_shapes()):
        d = root / "_templates" / str(i)
        os.makedirs(d)
        w = EventFileWriter(str(d), flush_secs=3600)
        for step in range(N_POINTS):
            values = [
                summary_pb2.Summary.Value(tag="train_loss", simple_value=float(train[step])),
                summary_pb2.Summary.Value(tag="val_loss", simple_value=float(val[step])),
            ]
            w.add_event(event_pb2.Event(wall_time=WALL0 + step, step=step, summary=summary_pb2.Summary(value=values)))
        w.close()
        [name] = os.listdir(d)
        templates.append(d / name)
    logs = root / "logs"
    for r in range(N_RUNS):
        run = logs / ("run%04d" % r)
        os.makedirs(run)
        src = templates[r % len(templates)]
        shutil.copyfile(src, run / src.name)
    return logs


def _percentiles(latencies):
    a = np.sort(np.asarray(latencies)) * 1000
    return "p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms" % (
        np.percentile(a, 50), np.percentile(a, 90), np.percentile(a, 99), a[-1])


def test_many_concurrent_reports_on_1000_runs(big_logdir):
    from tb_lossdoctor.report_cache import ReportCache

    tb = TB(big_logdir, "rust")
    try:
        names = ["run%04d" % r for r in range(N_RUNS)]
        assert wait_until(lambda: len(tb.listing()) == N_RUNS and all(
            ts.max_step == N_POINTS - 1 for tags in tb.listing().values() for ts in tags.values()), timeout=120)
        # A cache smaller than the experiment: its bounds are exercised, not just declared.
        cache = ReportCache(max_groups=300, max_reports=16)
        tb.plugin._cache = cache
        sizes = []
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                sizes.append(cache.sizes())  # read under the cache's lock
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        results, errors = [], []
        barrier = threading.Barrier(N_CLIENTS)

        def client(i):
            try:
                c = Client(tb.app)
                barrier.wait(timeout=30)
                t0 = time.monotonic()
                resp = c.get(BASE + "/report")
                full = (time.monotonic() - t0, resp.status_code, resp.get_data())
                # then a few narrowed reports each: 150 distinct groups overflow both caches
                narrowed = []
                for name in names[i * 3:(i + 1) * 3]:
                    t0 = time.monotonic()
                    r = c.get(BASE + "/report?run=" + name)
                    narrowed.append((time.monotonic() - t0, r.status_code, name, r.get_data()))
                results.append((full, narrowed))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        threads = [threading.Thread(target=client, args=(i,)) for i in range(N_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        stop.set()
        watcher.join()
        assert not errors, errors
        assert len(results) == N_CLIENTS

        fulls = [f for f, _ in results]
        assert {code for _, code, _ in fulls} == {200}
        # Identical diagnoses; the bodies are byte-identical too unless the small report cache
        # evicted the full report meanwhile (the narrowed requests overflow it), which only
        # renews `generated_at`.
        distinct = {json.dumps(without_time(json.loads(body)), sort_keys=True) for _, _, body in fulls}
        assert len(distinct) == 1, "concurrent reports differ"
        bodies = len({body for _, _, body in fulls})
        rep = parse_report(tb.report())
        assert len(rep["runs"]) == N_RUNS
        assert without_time(rep) == without_time(json.loads(fulls[0][2]))
        by_run = {r["run"]: r for r in rep["runs"]}
        assert {s["points"] for r in rep["runs"] for s in r["series"]} == {N_POINTS}
        # the same shape gives the same findings, whichever run holds it
        for r in range(10):
            codes = {tuple(f["code"] for f in by_run["run%04d" % (r + 10 * k)]["findings"]) for k in range(100)}
            assert len(codes) == 1, (r, codes)

        narrowed = [n for _, ns in results for n in ns]
        assert {code for _, code, _, _ in narrowed} == {200}
        for _, _, name, body in narrowed:
            one = json.loads(body)
            assert [r["run"] for r in one["runs"]] == [name]
            assert one["runs"][0] == by_run[name]

        assert sizes, "the watcher saw nothing"
        assert max(g for g, _ in sizes) <= 300 and max(r for _, r in sizes) <= 16
        assert cache.sizes()[0] <= 300 and cache.sizes()[1] <= 16
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print("\n%d concurrent full reports on %d runs (%d distinct bodies): %s"
              % (N_CLIENTS, N_RUNS, bodies, _percentiles([t for t, _, _ in fulls])))
        print("%d narrowed reports: %s" % (len(narrowed), _percentiles([t for t, _, _, _ in narrowed])))
        print("cache: groups <= %d (limit 300), reports <= %d (limit 16); diagnosed groups %d, reads %d; "
              "max RSS %.0f -> %.0f MB" % (max(g for g, _ in sizes), max(r for _, r in sizes),
                                          cache.diagnosed_groups, cache.reads, rss0 / 1024, rss1 / 1024))
    finally:
        tb.close()
