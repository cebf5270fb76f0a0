"""One cold `report` in a real TensorBoard, with and without the plugin's worker processes.

    python benchmarks/pool_cold.py --logdir LOGDIR --workers 0 1 --reps 3

For each repetition and each `--workers` value in turn (interleaved, so a change in the machine's
load touches both), a fresh `tensorboard --logdir LOGDIR` (default backend: the Rust data server)
is started with LOSSDOCTOR_WORKERS set, every run is waited for (`/data/runs`), then the whole
report is asked for once (no `partial`: the request waits for the complete report) and timed.
The CPU seconds of TensorBoard's process, of the plugin's worker processes (the fork server and
its workers) and of the data server are read from /proc. Medians, the ratio to the first
`--workers` value, the load average before and after; JSON in the benchmarks' results folder.
TensorBoard's own log goes beside the logdir (tests/tensorboard_process.py's launcher); the
logdir itself is only read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from tab_scale import _children_table, _cpu, _is_pool_process, _tree  # noqa: E402
from tensorboard_process import REPORT, get_json, launched_tensorboard  # noqa: E402

import make_logdir  # noqa: E402


def cpu(tb_pid: int) -> dict:
    tree = _tree(tb_pid, _children_table())[1:]
    pool = [p for p in tree if _is_pool_process(p)]
    return {"tensorboard": _cpu(tb_pid), "workers": sum(_cpu(p) for p in pool),
            "data_server": sum(_cpu(p) for p in tree if p not in pool)}


def one(logdir: Path, workers: int, runs: int) -> dict:
    os.environ["LOSSDOCTOR_WORKERS"] = str(workers)  # launched_tensorboard passes the environment
    with launched_tensorboard(logdir) as (proc, base, _port, _log, _start):
        deadline = time.monotonic() + 600
        while True:
            try:
                if len(get_json(base + "/data/runs", timeout=30)) >= runs:
                    break
            except Exception:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tensorboard never listed every run")
            time.sleep(0.2)
        time.sleep(1.0)
        before = cpu(proc.pid)
        start = time.perf_counter()
        with urllib.request.urlopen(base + REPORT, timeout=600) as r:
            body = r.read()
        seconds = time.perf_counter() - start
        after = cpu(proc.pid)
    used = {k: after[k] - before[k] for k in after}
    return {"workers": workers, "seconds": seconds, "bytes": len(body), "cpu": used, "load": os.getloadavg()[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--logdir", type=Path, required=True, help="e.g. make_logdir.py --runs 10000 --tags 2 --points 200")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    folders = sum(1 for _ in args.logdir.rglob("*tfevents*"))
    runs = len({f.parent for f in args.logdir.rglob("*tfevents*")})
    load_before = os.getloadavg()
    print(f"{args.logdir}: {runs:,} run folders ({folders:,} event files); load {load_before[0]:.1f}", flush=True)
    rows = []
    for rep in range(args.reps):
        for workers in args.workers:
            row = one(args.logdir, workers, runs)
            rows.append(row)
            c = row["cpu"]
            print(f"[rep {rep + 1}] workers={workers}: cold report {row['seconds']:.2f} s; CPU s: tensorboard "
                  f"{c['tensorboard']:.1f}, workers {c['workers']:.1f}, data server {c['data_server']:.1f}; "
                  f"load {row['load']:.1f}", flush=True)
    load_after = os.getloadavg()
    base = statistics.median(r["seconds"] for r in rows if r["workers"] == args.workers[0])
    print(f"\nload average {load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} cores)")
    print("| LOSSDOCTOR_WORKERS | cold report, median | ÷ first | CPU s: TensorBoard + workers |")
    print("|---|---|---|---|")
    for workers in args.workers:
        mine = [r for r in rows if r["workers"] == workers]
        med = statistics.median(r["seconds"] for r in mine)
        used = statistics.median(r["cpu"]["tensorboard"] + r["cpu"]["workers"] for r in mine)
        print(f"| {workers} | {med:.2f} s | {med / base:.2f}x | {used:.1f} |")
    out = Path(make_logdir.DEFAULT_ROOT) / "results" / ("pool_cold-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"logdir": str(args.logdir), "load_before": load_before, "load_after": load_after,
                               "rows": rows}, indent=1))
    print("written:", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
