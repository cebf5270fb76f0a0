"""The plugin's report diagnosed by worker processes (`plugin_pool`) inside TensorBoard.

On real event files served by TensorBoard's Rust data server: the report built with a worker
is byte for byte (but `generated_at`) the in-process one; the pool is started once and reused;
a worker killed while it holds run groups costs nothing but time (its groups are diagnosed
in-process, the next large build starts new workers); and a real `tensorboard` process leaves
no worker behind when it is stopped or killed.

The thresholds that keep small builds in-process are lowered here (module constants) so a
logdir of a few hundred runs is spread over the pool; the real `tensorboard` test uses a logdir
above them.
"""

from __future__ import annotations

import os
import re
import signal
import threading

import pytest

from conftest import SimpleValueWriter, decaying, wait_until
from tensorboard_process import REPORT, get_json, launched_tensorboard
from test_plugin_http import TB
from tb_lossdoctor import plugin_pool
from tb_lossdoctor.report_cache import ReportCache

RUNS = 240


@pytest.fixture(scope="module")
def pool_logdir(tmp_path_factory):
    """A sweep of RUNS small runs named by their settings (every fifth dies of NaN, every seventh
    overfits), and a few runs with a validation curve in a folder of its own."""
    root = tmp_path_factory.mktemp("pool")
    for i in range(RUNS):
        train = decaying(50, 2.0, 0.2 + 0.002 * i, noise=0.02, seed=i)
        val = [v + 0.1 for v in decaying(10, 2.1, 0.3, noise=0.02, seed=1000 + i)]
        if i % 7 == 0:
            val = val[:5] + [val[4] + 0.05 * k for k in range(1, 6)]
        if i % 5 == 0:
            train = train[:40] + [float("nan")] * 10
        w = SimpleValueWriter(root / f"sweep/lr={10 ** -(1 + i % 4)}_bs={16 << (i % 3)}_seed={i}")
        w.add("loss", train)
        w.add("val_loss", val, every=5)
        w.close()
    for i in range(6):
        SimpleValueWriter(root / f"pair{i}" / "train").add("epoch_loss", decaying(30, 1.0, 0.2, seed=i)).close()
        SimpleValueWriter(root / f"pair{i}" / "validation").add("epoch_loss", decaying(30, 1.1, 0.3, seed=50 + i)).close()
    return root


@pytest.fixture
def served(pool_logdir, monkeypatch):
    """TensorBoard's app on the data server, every build spread over the pool in small tasks."""
    monkeypatch.setattr(plugin_pool, "POOL_START_GROUPS", 1)
    monkeypatch.setattr(plugin_pool, "POOL_MIN_GROUPS", 1)
    monkeypatch.setattr(plugin_pool, "CHUNK_GROUPS", 8)
    tb = TB(pool_logdir, "rust")
    tb.plugin._data_provider = tb.provider._inner  # TensorBoard's own provider: the columnar read
    listing = wait_until(lambda: len(tb.listing()) == RUNS + 12, timeout=60)
    assert listing, "the data server never listed every run"
    caches = []

    def report(cache):
        tb.plugin._cache = cache
        if cache not in caches:
            caches.append(cache)
        resp = tb.report()
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_data()

    yield report
    for cache in caches:
        cache.close()
    tb.close()


def _no_time(body: bytes) -> bytes:
    return re.sub(rb'"generated_at": "[^"]*"', b'"generated_at": ""', body, count=1)


def _pool_up(cache: ReportCache):
    pool = cache._pool
    assert pool is not None, "no pool was started"
    assert wait_until(lambda: pool.executor() is not None, timeout=120), "the workers never started"
    return pool


def test_pooled_report_is_the_in_process_report_and_the_pool_is_reused(served):
    in_process = served(ReportCache(workers=0))
    cache = ReportCache(workers=1)
    first = served(cache)  # starts the pool; this build goes on in-process meanwhile
    pool = _pool_up(cache)
    pids = list(pool.pids)
    for _ in range(2):
        cache.clear()  # every group diagnosed again, by the running pool
        sent = pool.sent
        again = served(cache)
        assert pool.sent > sent, "no run group went to the worker"
        assert cache._pool is pool and pool.pids == pids and pool.failures == 0
        assert _no_time(again) == _no_time(in_process)
    assert _no_time(first) == _no_time(in_process)
    assert b'"sweep": null' not in in_process and len(re.findall(rb'"verdict"', in_process)) >= RUNS


def test_a_worker_killed_while_holding_run_groups_loses_nothing(served, caplog):
    in_process = served(ReportCache(workers=0))
    cache = ReportCache(workers=1)
    served(cache)
    pool = _pool_up(cache)
    [pid] = pool.pids
    cache.clear()
    before = cache.diagnosed_groups
    os.kill(pid, signal.SIGSTOP)  # the worker takes tasks no more; those queued for it stay there
    out = {}
    build = threading.Thread(target=lambda: out.setdefault("body", served(cache)))
    try:
        build.start()
        # The build diagnoses in-process everything no worker took, then waits for the worker.
        counts = []
        stuck = wait_until(lambda: counts.append(cache.diagnosed_groups) or (
            len(counts) > 10 and counts[-1] == counts[-11] > 0 and build.is_alive()), timeout=60)
        assert stuck and counts[-1] - before < RUNS + 6, "the build did not wait for the stopped worker"
    finally:
        os.kill(pid, signal.SIGKILL)
    build.join(120)
    assert not build.is_alive()
    assert _no_time(out["body"]) == _no_time(in_process)
    assert pool.failures == 1 and "a worker process failed" in caplog.text
    # The next large build starts new workers (in the background) and uses them again.
    cache.clear()
    assert _no_time(served(cache)) == _no_time(in_process)
    _pool_up(cache)
    assert pool.pids != [pid]
    cache.clear()
    sent = pool.sent
    assert _no_time(served(cache)) == _no_time(in_process)
    assert pool.sent > sent


def test_idle_workers_and_their_fork_server_stop_and_start_again_when_needed(served, monkeypatch):
    """Workers unused for IDLE_SECONDS are stopped, with the fork server (the memory an idle
    TensorBoard does not need); the next large build starts them again and uses them."""
    from multiprocessing import forkserver

    in_process = served(ReportCache(workers=0))
    for other in list(plugin_pool._live):  # earlier tests' pools keep the fork server up
        other.stop_workers()
    cache = ReportCache(workers=1)
    served(cache)  # starts the pool (its idle clock: the default, far longer than this test)
    pool = _pool_up(cache)
    [pid] = pool.pids
    server = forkserver._forkserver._forkserver_pid
    assert pid in _children() and server in _children()
    monkeypatch.setattr(plugin_pool, "IDLE_SECONDS", 1.0)
    cache.clear()
    served(cache)  # uses the workers; idle from its end on
    assert wait_until(lambda: pool.idle_stops == 1, timeout=30), "the idle workers were never stopped"
    assert wait_until(lambda: pid not in _children() and server not in _children(), timeout=30)
    assert pool.executor() is None  # starts them again, in the background
    new = _pool_up(cache)
    assert new is pool and pool.pids and pool.pids != [pid] and pool.failures == 0
    cache.clear()
    sent = pool.sent
    assert _no_time(served(cache)) == _no_time(in_process)
    assert pool.sent > sent


# -- a real TensorBoard process: no worker left behind ------------------------------------------


def _children() -> dict:
    """{pid: parent pid} of every live process (zombies excluded)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                out[int(name)] = int(fields[1])
    return out


def _descendants(pid: int) -> set:
    parents = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="module")
def large_logdir(tmp_path_factory):
    """More run groups than a build needs to start the pool (copies of a few real event files)."""
    from test_browser_scale import write_logdir

    return write_logdir(tmp_path_factory.mktemp("large"), runs=plugin_pool.POOL_START_GROUPS + 200, hostile=False)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process tree from /proc")
@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_tensorboard_leaves_no_worker_behind(large_logdir, monkeypatch, stop):
    monkeypatch.setenv(plugin_pool.WORKERS_ENV, "1")
    runs = plugin_pool.POOL_START_GROUPS + 200
    with launched_tensorboard(large_logdir) as (proc, base, _port, log_path, _start):
        report = wait_until(lambda: _complete(base, runs), timeout=240, interval=0.5)
        assert report, "no complete report:\n" + log_path.read_text(errors="replace")[-3000:]
        # The cold build started the pool: the fork server and a worker it forked.
        assert wait_until(lambda: len(_pool_processes(proc.pid)) >= 2, timeout=120), (
            "no worker process started:\n" + log_path.read_text(errors="replace")[-3000:])
        family = _descendants(proc.pid)
        assert wait_until(lambda: _complete(base, runs) == report, timeout=60)  # served from the cache
        proc.send_signal(getattr(signal, stop))
        proc.wait(timeout=60)
    left = wait_until(lambda: not (family & set(_children())), timeout=30)
    assert left, "still running after tensorboard stopped: %s" % [
        _cmdline(p)[:120] for p in family & set(_children())]


def _complete(base: str, runs: int):
    try:
        report = get_json(base + REPORT, timeout=120)
    except Exception:
        return None
    if len(report.get("runs", ())) != runs:
        return None
    report.pop("generated_at")
    return report


def _pool_processes(pid: int) -> list:
    return [p for p in _descendants(pid) if "multiprocessing.forkserver" in _cmdline(p)]
