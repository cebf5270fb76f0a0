"""What the plugin's report costs when nothing changed and when one run changed (issue #13).

    python benchmarks/plugin_changes.py 100 3000 10000

For each size N, the logdir of `make_logdir.py --runs N --tags 2 --points 200` (generated when
missing; 10,000 runs takes minutes) is COPIED to a temporary folder (the cached logdirs under
`lossdoctor_bench/` are never written to), then served the way TensorBoard serves it: its Rust
data server in reload mode (`DataServer(reload_seconds=1)`) and the plugin's `ReportCache`.
Each repetition starts a fresh data server and a fresh cache and times three requests of the
whole report (`report_json`, as the `report` route builds it):
- cold: the first request (every run read and diagnosed): the baseline;
- idle: the next request, with nothing new (one listing; the assembled report is reused);
- one change: after a writer appended one point to one run (a different run each repetition)
  and the data server listed it (only that run group is read and diagnosed again).
Requests are spaced by `--gap` seconds, as a tab's polls are: back to back, gRPC calls to the data
server stall for ~40 ms (TCP delayed acknowledgement: consecutive calls on a busy connection,
outside this project) and the stall would be measured instead of the report.
Medians of `--reps`, and each median as a ratio to the cold median of the same invocation
(these machines are shared and noisy: ratios less so). Each repetition also checks that exactly
one run group was diagnosed again; `--check` also compares the one-change report with a cold
report of the same data (a second cache), ignoring `generated_at`.
`--profile` writes a cProfile text of the last one-change request of each size (results folder).
`--workers 0 1` measures the plugin diagnosing in-process, then with one worker process (a new
pool per repetition, as each TensorBoard start has; the fork server itself is started once).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import make_logdir  # noqa: E402
from tb_lossdoctor import parallel, plugin_pool  # noqa: E402
from watch_poll import append_point  # noqa: E402

TARGET_CHANGE = 0.05  # issue #13: a change to one run costs < 5% of a cold report
TARGET_IDLE = 0.10  # a request with nothing new < 10% of a cold report


def _listing(server, ctx):
    return server.provider.list_scalars(ctx, experiment_id="", plugin_name="scalars")


def measure(logdir: str, reps: int, check: bool, profile_path: str = None, gap: float = 0.5,
            workers=None) -> dict:
    from tensorboard import context as tb_context

    from tb_lossdoctor.readers.data_server import DataServer
    from tb_lossdoctor.report_cache import ReportCache

    ctx = tb_context.RequestContext()
    cold, idle, one, checked = [], [], [], []
    for rep in range(reps):
        with DataServer(logdir, reload_seconds=1) as server:
            cache = ReportCache(workers=workers)

            def request(profiler=None) -> float:
                time.sleep(gap)
                start = time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                body = cache.report_json(server.provider, ctx, "", sample_limit=None)
                if profiler is not None:
                    profiler.disable()
                request.body = body
                return time.perf_counter() - start

            cold.append(request())
            idle.append(request())
            listing = _listing(server, ctx)
            names = sorted(listing)
            run = names[(rep * 7919 + len(names) // 3) % len(names)]  # a different run each time
            tag = sorted(listing[run])[0]
            step = int(listing[run][tag].max_step) + 1 + rep
            append_point(os.path.join(logdir, *run.split("/")), tag, step, 0.5)
            deadline = time.time() + 120
            while _listing(server, ctx)[run][tag].max_step < step:
                if time.time() > deadline:
                    raise RuntimeError("the data server never listed the new point")
                time.sleep(0.1)
            diagnosed, reads = cache.diagnosed_groups, cache.reads
            profiler = cProfile.Profile() if profile_path and rep == reps - 1 else None
            one.append(request(profiler))
            if cache.diagnosed_groups - diagnosed != 1 or cache.reads - reads != 1:
                raise AssertionError("one changed run re-diagnosed %d groups in %d reads"
                                     % (cache.diagnosed_groups - diagnosed, cache.reads - reads))
            if profiler is not None:
                text = io.StringIO()
                stats = pstats.Stats(profiler, stream=text)
                stats.sort_stats("cumulative").print_stats(40)
                stats.sort_stats("tottime").print_stats(25)
                with open(profile_path, "w") as f:
                    f.write(text.getvalue())
            if check:
                changed = json.loads(request.body)
                fresh = json.loads(ReportCache(workers=0).report_json(server.provider, ctx, "", sample_limit=None))
                changed.pop("generated_at"), fresh.pop("generated_at")
                if changed != fresh:
                    raise AssertionError("the one-change report differs from a cold report of the same data")
                checked.append(True)
            cache.close()  # its worker processes, if any
    c, i, o = (statistics.median(x) for x in (cold, idle, one))
    return {"cold_s": c, "idle_s": i, "one_change_s": o, "idle_ratio": i / c, "one_change_ratio": o / c,
            "cold_all": cold, "idle_all": idle, "one_change_all": one, "checked": len(checked)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sizes", type=int, nargs="+", help="numbers of runs (logdirs of make_logdir.py)")
    p.add_argument("--tags", type=int, default=2)
    p.add_argument("--points", type=int, default=200)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--gap", type=float, default=0.5, help="seconds between requests (as polls)")
    p.add_argument("--check", action="store_true", help="compare the one-change report with a cold one")
    p.add_argument("--profile", action="store_true", help="cProfile the last one-change request")
    p.add_argument("--workers", type=int, nargs="+", default=[None],
                   help="the plugin's worker processes (0: in-process; several values: each measured in "
                        "turn, same logdir copy; default: as in TensorBoard, LOSSDOCTOR_WORKERS or cores - 1)")
    args = p.parse_args(argv)

    results_dir = os.path.join(make_logdir.DEFAULT_ROOT, "results")
    os.makedirs(results_dir, exist_ok=True)
    rows = []
    for n in args.sizes:
        src = make_logdir.default_out(n, args.tags, args.points, 10, 0)
        manifest = make_logdir.generate(src, n, args.tags, args.points, 10, 0)  # reused when it exists
        with tempfile.TemporaryDirectory(prefix="lossdoctor_changes_") as tmp:
            logdir = os.path.join(tmp, "logdir")
            shutil.copytree(src, logdir)  # the writer appends to this copy only
            profile_path = os.path.join(results_dir, "plugin_changes_r%d_profile.txt" % n) if args.profile else None
            for workers in args.workers:
                if workers is None:
                    workers = plugin_pool.plugin_workers() if os.environ.get(plugin_pool.WORKERS_ENV) else \
                        max(0, min(parallel.MAX_WORKERS, parallel.available_cores() - 1))
                load = os.getloadavg()[0]
                row = measure(logdir, args.reps, args.check, profile_path, args.gap, workers)
                row.update(runs=n, run_folders=manifest.get("run_folders"), series=manifest.get("series"),
                           workers=workers, load_before=load, load_after=os.getloadavg()[0])
                rows.append(row)
                print("%6d runs, %d workers: cold %.2f s, idle %.0f ms (%.3fx), one change %.0f ms (%.3fx)%s; "
                      "load %.1f -> %.1f"
                      % (n, workers, row["cold_s"], row["idle_s"] * 1e3, row["idle_ratio"], row["one_change_s"] * 1e3,
                         row["one_change_ratio"], ", equal to a cold report" if row["checked"] else "",
                         row["load_before"], row["load_after"]), flush=True)

    print()
    print("| runs (folders, series) | workers | cold | idle | ÷ cold | one run changed | ÷ cold | load average |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s (%s, %s) | %d | %.2f s | %.0f ms | %.3fx | %.0f ms | **%.3fx** | %.1f -> %.1f |"
              % (f"{r['runs']:,}", f"{r['run_folders']:,}", f"{r['series']:,}", r["workers"], r["cold_s"],
                 r["idle_s"] * 1e3, r["idle_ratio"], r["one_change_s"] * 1e3, r["one_change_ratio"],
                 r["load_before"], r["load_after"]))
    for r in rows:
        print("%d runs: idle target (< %.0f%%) %s; one-change target (< %.0f%%) %s"
              % (r["runs"], TARGET_IDLE * 100, "met" if r["idle_ratio"] < TARGET_IDLE else "NOT met",
                 TARGET_CHANGE * 100, "met" if r["one_change_ratio"] < TARGET_CHANGE else "NOT met"))
    out = os.path.join(results_dir, "plugin_changes_%s.json" % time.strftime("%Y%m%d_%H%M%S"))
    with open(out, "w") as f:
        json.dump(rows, f, indent=1)
    print("written:", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
