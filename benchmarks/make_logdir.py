"""Generate a large TensorBoard logdir with TensorBoard's own event writer.

    python benchmarks/make_logdir.py --runs 100 --tags 4 --points 1000 --out DIR
    python benchmarks/make_logdir.py --runs 1000 --jobs 2           # default out dir under the temp folder

Every point is one `Event(summary=Summary(value=[Value(tag, simple_value)]))` written by
`tensorboard.summary.writer.event_file_writer.EventFileWriter` (the writer behind PyTorch's and
tensorboardX's `SummaryWriter`), one event file per run folder. The mix of curves (healthy and
pathological) and layouts is in `benchmarks/curves.py`, seeded. `--tf-fraction F` writes that
fraction of the runs with TF2 `tf.summary.scalar` instead (tensor summaries, as Keras does; slow).

A manifest (`bench_manifest.json`, ignored by TensorBoard) records what was written: counts of
runs, series and points, the kind mix, and each series' last step (used to know when a reader
has loaded everything). An existing logdir whose manifest matches the arguments is reused.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import curves  # noqa: E402

MANIFEST = "bench_manifest.json"
DEFAULT_ROOT = os.path.join(tempfile.gettempdir(), "lossdoctor_bench")


def default_out(runs, tags, points, val_every, seed, tf_fraction=0.0) -> str:
    tf = f"_tf{tf_fraction:g}" if tf_fraction else ""
    return os.path.join(DEFAULT_ROOT, f"r{runs}_t{tags}_p{points}_v{val_every}_s{seed}{tf}")


def _write_simple(folder: str, series, wall0: float) -> None:
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    os.makedirs(folder, exist_ok=True)
    writer = EventFileWriter(folder, max_queue_size=100_000, flush_secs=3600)
    event = event_pb2.Event()
    value = event.summary.value.add()
    # Interleave tags by step, as a training loop does.
    items = []
    for tag, steps, values in series:
        items.extend((int(s), i, tag, float(v)) for i, (s, v) in enumerate(zip(steps, values)))
    items.sort(key=lambda t: (t[0], t[2]))
    for step, _, tag, v in items:
        event.step = step
        event.wall_time = wall0 + step * 0.05
        value.tag = tag
        value.simple_value = v
        writer.add_event(event)
    writer.close()


def _write_tf(folder: str, series) -> None:
    import tensorflow as tf

    writer = tf.summary.create_file_writer(folder, max_queue=100_000, flush_millis=3_600_000)
    with writer.as_default():
        for tag, steps, values in series:
            for s, v in zip(steps, values):
                tf.summary.scalar(tag, float(v), step=int(s))
    writer.flush()
    writer.close()


def _write_run(args):
    out, seed, index, tags, points, val_every, use_tf = args
    spec, data = curves.run_series(seed, index, tags, points, val_every)
    folders = {}
    for folder, tag, steps, values in data:
        folders.setdefault(folder, []).append((tag, steps, values))
    last = []
    n_points = 0
    for folder, series in folders.items():
        path = os.path.join(out, *folder.split("/"))
        if use_tf:
            _write_tf(path, series)
        else:
            _write_simple(path, series, 1_700_000_000.0 + index)
        for tag, steps, values in series:
            n_points += len(steps)
            last.append([folder, tag, int(steps[-1]), len(steps)])
    return spec.kind, spec.layout, n_points, last, len(folders)


def generate(out, runs, tags, points, val_every=10, seed=0, jobs=None, tf_fraction=0.0, force=False) -> dict:
    manifest_path = os.path.join(out, MANIFEST)
    wanted = dict(runs=runs, tags=tags, points=points, val_every=val_every, seed=seed, tf_fraction=tf_fraction)
    if not force and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
        if all(manifest.get(k) == v for k, v in wanted.items()):
            return manifest
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    n_tf = int(round(runs * tf_fraction))
    work = [(out, seed, i, tags, points, val_every, i < n_tf) for i in range(runs)]
    start = time.monotonic()
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1:  # also for one run: keeps TensorFlow (imported by the writer) out of this process
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(_write_run, work, chunksize=max(1, runs // (jobs * 8)))
    else:
        results = [_write_run(w) for w in work]
    kinds, layouts, series_last = {}, {}, []
    n_points = n_folders = 0
    for kind, layout, pts, last, nf in results:
        kinds[kind] = kinds.get(kind, 0) + 1
        layouts[layout] = layouts.get(layout, 0) + 1
        n_points += pts
        n_folders += nf
        series_last.extend(last)
    manifest = dict(
        wanted,
        run_folders=n_folders,
        series=len(series_last),
        total_points=n_points,
        kinds=kinds,
        layouts=layouts,
        bytes_on_disk=_du(out),
        generate_seconds=round(time.monotonic() - start, 2),
        series_last=series_last,  # [folder (TensorBoard run), tag, last step, points]
    )
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    return manifest


def _du(path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--tags", type=int, default=4, help="tags per run (2, 4, 5 = + learning rate, more = + aux)")
    p.add_argument("--points", type=int, default=1000, help="points of the per-step tags")
    p.add_argument("--val-every", type=int, default=10, help="torch-layout validation tags: every k steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None, help="writer processes (default: all cores)")
    p.add_argument("--tf-fraction", type=float, default=0.0, help="fraction of runs written with tf.summary")
    p.add_argument("--out", default=None, help="logdir to (re)create (default under %s)" % DEFAULT_ROOT)
    p.add_argument("--force", action="store_true", help="rewrite even if a matching manifest exists")
    args = p.parse_args(argv)
    out = args.out or default_out(args.runs, args.tags, args.points, args.val_every, args.seed, args.tf_fraction)
    m = generate(out, args.runs, args.tags, args.points, args.val_every, args.seed, args.jobs,
                 args.tf_fraction, args.force)
    summary = {k: v for k, v in m.items() if k != "series_last"}
    print(out)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
