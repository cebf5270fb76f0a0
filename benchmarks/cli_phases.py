"""Where the CLI's wall time goes on one logdir: a timeline of its phases and each process's CPU.

    python benchmarks/cli_phases.py LOGDIR [--reps 5]

Each repetition runs `lossdoctor LOGDIR --format json` as a program (`cli.main()` with no argv,
so with its worker pool, as a user runs it) in a fresh process, with the engine's and readers'
entry points wrapped to note when each phase ends:

  start      `lossdoctor`'s imports and its worker pool, up to the data server's start (the
             interpreter's own start, ~0.1 s, is before the clock and not counted)
  load       the data server loads the logdir (`--reload once`; the main process imports meanwhile)
  read       every scalar read through gRPC (the workers diagnose the batches read so far)
  grouping   the run groups of every series (`engine.split_groups`)
  diagnose   what the workers had not reached, in the main process and the workers
  report     the report around the entries, with the across-runs `sweep` (`engine.whole_report`)
  output     the JSON written, the pool shut down, the garbage collector frozen

and the CPU seconds of the main process, of its workers and of the data server, and the main
process's garbage-collection time. Medians of `--reps`. The issue #13 target (CLI <= 0.8x of the
data server's load + `read_scalars`) is measured by `run.py`; this says why a run is where it is.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PHASES = ("start", "load", "read", "grouping", "diagnose", "report", "output")

CHILD = r"""
import gc, json, os, resource, sys, time
t0 = time.perf_counter()
marks = {}
gc_seconds = [0.0, 0.0]

def on_gc(phase, info):
    if phase == "start":
        gc_seconds[1] = time.perf_counter()
    else:
        gc_seconds[0] += time.perf_counter() - gc_seconds[1]

gc.callbacks.append(on_gc)

def wrap(owner, name, before=None, after=None):
    # When the first call of owner.name starts (`before`) and ends (`after`): later calls
    # (split_groups again, for a task taken back from a worker) are inside a later phase.
    real = getattr(owner, name)
    def wrapped(*args, **kwargs):
        if before:
            marks.setdefault(before, time.perf_counter() - t0)
        out = real(*args, **kwargs)
        if after:
            marks.setdefault(after, time.perf_counter() - t0)
        return out
    setattr(owner, name, wrapped)

from tb_lossdoctor import cli, engine, parallel
from tb_lossdoctor.readers import data_server, logdir

server_cpu = [0.0]
real_close = data_server.DataServer.close
def close(self):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    real_close(self)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu[0] += (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
data_server.DataServer.close = close
wrap(data_server.DataServer, "_start", before="start", after="load")
wrap(logdir, "read_logdir", after="read")
wrap(engine, "split_groups", after="grouping")
wrap(parallel.GroupPool, "diagnose_groups", after="diagnose")
wrap(engine, "whole_report", after="report")
sys.argv = ["lossdoctor", sys.argv[1], "--format", "json"]
sys.stdout = open(os.devnull, "w")
code = cli.main()
marks["output"] = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF)
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "marks": marks, "main_cpu": me.ru_utime + me.ru_stime,
                  "server_cpu": server_cpu[0],
                  "workers_cpu": children.ru_utime + children.ru_stime - server_cpu[0],
                  "gc_seconds": gc_seconds[0]}), file=sys.stderr)
"""


def one(logdir: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, logdir], capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("{")]
    if proc.returncode not in (0, 1) or not lines:
        raise RuntimeError(f"the CLI failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def durations(marks: dict) -> dict:
    """Seconds spent in each phase (a phase that did not happen, e.g. no pool: 0)."""
    out, last = {}, 0.0
    for phase in PHASES:
        end = marks.get(phase, last)
        out[phase] = max(0.0, end - last)
        last = max(last, end)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("logdir")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    runs = [one(args.logdir) for _ in range(args.reps)]
    med = lambda values: statistics.median(values)  # noqa: E731
    print(f"`lossdoctor {os.path.basename(args.logdir.rstrip('/'))} --format json`, medians of {args.reps} "
          f"(load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)\n")
    print("| phase | seconds |\n|---|---|")
    for phase in PHASES:
        print(f"| {phase} | {med([durations(r['marks'])[phase] for r in runs]):.2f} |")
    print(f"| **wall** | **{med([r['marks']['output'] for r in runs]):.2f}** |\n")
    print("| CPU seconds | median |\n|---|---|")
    for key, label in (("main_cpu", "main process"), ("workers_cpu", "worker processes"),
                       ("server_cpu", "data server"), ("gc_seconds", "main process's garbage collection")):
        print(f"| {label} | {med([r[key] for r in runs]):.2f} |")


if __name__ == "__main__":
    main()
