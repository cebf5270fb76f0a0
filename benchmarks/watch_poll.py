"""What following live runs costs per poll of `lossdoctor watch`.

    python benchmarks/watch_poll.py --runs 1000 --tags 2 --points 200

A logdir of RUNS runs is written with TensorBoard's own writer (benchmarks/make_logdir.py), then
followed the way `watch` follows it (TensorBoard's data server in reload mode, the plugin's
report cache, the verdict tracker). Measured in the same run, medians of `--reps`:
- cold: the first poll (every run read and diagnosed): the baseline;
- idle: a poll with nothing new (one listing, nothing read or diagnosed);
- live: a poll after a writer appended one point to `--changed` runs (only those are read again).
Printed as times and as ratios to the cold poll: these machines are noisy, ratios less so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import make_logdir  # noqa: E402


def append_point(run_dir: str, tag: str, step: int, value: float) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(run_dir, filename_suffix=f".live{step}")
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--tags", type=int, default=2)
    p.add_argument("--points", type=int, default=200)
    p.add_argument("--changed", type=int, default=10, help="runs that get a new point before a live poll")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)

    from tensorboard import context as tb_context

    from tb_lossdoctor.live import VerdictTracker
    from tb_lossdoctor.readers.data_server import DataServer
    from tb_lossdoctor.report_cache import ReportCache

    out = make_logdir.default_out(args.runs, args.tags, args.points, 10, 0)
    make_logdir.generate(out, args.runs, args.tags, args.points, 10, 0)
    ctx = tb_context.RequestContext()
    cold, idle, live = [], [], []
    for rep in range(args.reps):
        with DataServer(out, reload_seconds=1) as server:
            cache, tracker = ReportCache(max_groups=1_000_000), VerdictTracker()

            def poll() -> float:
                start = time.perf_counter()
                report = json.loads(cache.report_json(server.provider, ctx, "", sample_limit=None))
                tracker.update(report["runs"])
                return time.perf_counter() - start

            cold.append(poll())
            idle.append(poll())
            # A writer appends one point to some runs; wait for the data server's reload to see them.
            listing = server.provider.list_scalars(ctx, experiment_id="", plugin_name="scalars")
            runs = sorted(listing)[: args.changed]
            expected = {}
            for run in runs:
                tag = sorted(listing[run])[0]
                step = listing[run][tag].max_step + 1 + rep
                append_point(os.path.join(out, *run.split("/")), tag, step, 0.5)
                expected[(run, tag)] = step
            deadline = time.time() + 60
            while True:
                now = server.provider.list_scalars(ctx, experiment_id="", plugin_name="scalars")
                if all(now[r][t].max_step >= s for (r, t), s in expected.items()):
                    break
                if time.time() > deadline:
                    raise SystemExit("the data server never reloaded the new points")
                time.sleep(0.2)
            live.append(poll())
    c, i, lv = statistics.median(cold), statistics.median(idle), statistics.median(live)
    print(f"logdir: {args.runs} runs x {args.tags} tags x {args.points} points, data server, "
          f"medians of {args.reps}")
    print("| poll | time | ÷ cold poll |\n|---|---|---|")
    print(f"| cold (every run read and diagnosed) | {c:.2f} s | 1.00x |")
    print(f"| idle (nothing new) | {i * 1000:.0f} ms | {i / c:.3f}x |")
    print(f"| live ({args.changed} runs got a point) | {lv * 1000:.0f} ms | {lv / c:.3f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
