"""The memory the plugin adds to a real TensorBoard, against the size of the scalars it reads.

Issue #13: "plugin memory within 1.2x of the scalars it reads at 10,000 runs". `run.py --only
memory` compares peaks with and without the plugin after the Scalars dashboard has read every
tag, so a report that fits under that (larger) peak measures as nothing; this measures the
report alone, as a user who opens only the Diagnosis tab sees it:

  1. start `tensorboard --logdir LOGDIR` (default backend: the Rust data server), wait until
     every run is listed and the process tree's memory is steady (the baseline);
  2. one cold `report`, then `--warm` more: each a whole report, or with `--polls` as the tab
     asks for it (`partial=1`, asked again 0.5 s after each partial answer);
  3. with `--changes N`: N times, a writer adds one point to one run (a new event file, as a
     resumed run writes) and the report is asked for until it shows that point (a job writing
     while the tab is open);
  4. the tree's memory once steady again, and its peak during the reports (sampled every 50 ms);
  5. with `--idle S`: the tree's memory once no report has been asked for S seconds (the plugin
     stops its worker processes after `plugin_pool.IDLE_SECONDS` unused).

Memory is the proportional set size (PSS) summed over TensorBoard's process tree: its Python
process, the data server, and the plugin's fork server and worker processes (pages they share
are counted once in all). The scalars' own size is 24 bytes per point (step, value and wall
time as 8-byte numbers), the points from make_logdir.py's manifest.

    python benchmarks/plugin_memory.py --logdir /tmp/lossdoctor_bench/r10000_t2_p200_v10_s0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from tab_scale import REPORT, TensorBoard, _children_table, _is_pool_process, _tree, logdir_counts, log  # noqa: E402

MB = 1024 * 1024
BYTES_PER_POINT = 24
SAMPLE_SECONDS = 0.05


def pss_mb(pid: int) -> float:
    """The process's proportional set size in MB (0 once it has exited)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_pss(root: int) -> dict:
    """PSS in MB of TensorBoard's process tree: {python, data_server, workers, total}."""
    pids = _tree(root, _children_table())
    pool = [p for p in pids[1:] if _is_pool_process(p)]
    out = {"python": pss_mb(root), "workers": sum(pss_mb(p) for p in pool),
           "data_server": sum(pss_mb(p) for p in pids[1:] if p not in pool)}
    out["total"] = sum(out.values())
    return out


def steady(root: int, settle: float = 2.0, tolerance_mb: float = 2.0, timeout: float = 120.0) -> dict:
    """The tree's PSS once it has changed by less than `tolerance_mb` over `settle` seconds."""
    deadline = time.monotonic() + timeout
    last = tree_pss(root)
    while time.monotonic() < deadline:
        time.sleep(settle)
        now = tree_pss(root)
        if abs(now["total"] - last["total"]) < tolerance_mb:
            return now
        last = now
    return last


class PeakSampler(threading.Thread):
    """Samples the tree's PSS until stopped; keeps the sample with the largest total."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.peak, self.halt = root, {"total": 0.0}, threading.Event()

    def run(self):
        while not self.halt.is_set():
            now = tree_pss(self.root)
            if now["total"] > self.peak["total"]:
                self.peak = now
            time.sleep(SAMPLE_SECONDS)


def append_point(run_dir: Path, tag: str, step: int, value: float) -> None:
    """One point more in a run, in a new event file (as a resumed run writes it)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(run_dir), filename_suffix=".more%d" % step)
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()


def points_of(body: dict, run: str, tag: str) -> int:
    return next(s["points"] for r in body["runs"] for s in r["series"] if (s["run"], s["tag"]) == (run, tag))


def change_runs(tb: TensorBoard, logdir: Path, body: dict, changes: int, timeout: float = 120.0) -> None:
    """`changes` times: one point more in the first run's first series, then the report asked for
    (every 0.5 s, as the tab polls while waiting) until it has the point."""
    first = body["runs"][0]["series"][0]
    run, tag = first["run"], first["tag"]
    base = int(time.time()) * 100  # steps never written before, on a logdir changed by an earlier invocation too
    for change in range(changes):
        want = points_of(body, run, tag) + 1
        append_point(logdir / run, tag, base + change, 0.5)
        deadline = time.monotonic() + timeout
        while points_of(body, run, tag) < want:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the new point of {run!r} never showed")
            time.sleep(0.5)
            body = json.loads(tb.get(REPORT))


def measure(logdir: Path, warm: int, polls: bool, log_dir: Path, changes: int = 0, idle: float = 0.0) -> dict:
    folders, groups, _ = logdir_counts(logdir)
    tb = TensorBoard(logdir, log_dir)
    try:
        tb.answers()
        tb.listed(folders)
        before = steady(tb.proc.pid)
        sampler = PeakSampler(tb.proc.pid)
        sampler.start()
        seconds, answers = [], 0
        for _ in range(1 + warm):
            t = time.monotonic()
            while True:
                body = json.loads(tb.get(REPORT + ("?partial=1" if polls else "")))
                answers += 1
                if len(body["runs"]) == groups and not body.get("pending"):
                    break
                time.sleep(0.5)
            seconds.append(time.monotonic() - t)
        if changes:
            t = time.monotonic()
            change_runs(tb, logdir, body, changes)
            seconds.append(time.monotonic() - t)
        done = time.monotonic()
        after = steady(tb.proc.pid)
        sampler.halt.set()
        sampler.join()
        if idle:
            time.sleep(max(0.0, idle - (time.monotonic() - done)))
            idle_state = steady(tb.proc.pid)
    finally:
        tb.close()
    out = {"before": before, "after": after, "peak": sampler.peak, "report_seconds": seconds, "answers": answers}
    if idle:
        out["idle"] = idle_state
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--logdir", type=Path, required=True, help="a make_logdir.py logdir (its manifest gives the points)")
    p.add_argument("--warm", type=int, default=2, help="reports after the cold one")
    p.add_argument("--polls", action="store_true", help="ask as the tab does (partial answers while building)")
    p.add_argument("--changes", type=int, default=0,
                   help="then add a point to one run this many times, each followed by reports (writes into LOGDIR: use a copy)")
    p.add_argument("--idle", type=float, default=0.0, help="then measure again this many seconds after the last report")
    args = p.parse_args(argv)
    manifest = json.loads((args.logdir / "bench_manifest.json").read_text())
    own = manifest["total_points"] * BYTES_PER_POINT / MB
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "lossdoctor_bench" / "plugin_memory_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    r = measure(args.logdir, args.warm, args.polls, log_dir, args.changes, args.idle)
    added, peak_added = (r[k]["total"] - r["before"]["total"] for k in ("after", "peak"))
    print(f"{manifest['runs']:,} runs, {manifest['total_points']:,} points: scalars' own size {own:.1f} MB")
    print(f"reports (s): {', '.join(f'{s:.2f}' for s in r['report_seconds'])} ({r['answers']} answers"
          f"{f'; the last: {args.changes} changes' if args.changes else ''})")
    print("| tree PSS (MB) | TensorBoard's Python | data server | plugin workers | total |")
    print("|---|---|---|---|---|")
    for k in ("before", "peak", "after", "idle"):
        if k not in r:
            continue
        m = r[k]
        print(f"| {k} | {m['python']:.0f} | {m['data_server']:.0f} | {m['workers']:.0f} | {m['total']:.0f} |")
    print(f"memory the plugin adds: {added:.0f} MB after the reports = {added / own:.2f}x the scalars; "
          f"at its peak {peak_added:.0f} MB = {peak_added / own:.2f}x (target <= 1.2x)")
    if "idle" in r:
        idle_added = r["idle"]["total"] - r["before"]["total"]
        print(f"{args.idle:g} s after the last report: {idle_added:.0f} MB = {idle_added / own:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
