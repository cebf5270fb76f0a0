#!/usr/bin/env python
"""The cost of "Across runs" (the report's `sweep`) as a share of the report's own cost, both
measured in the same run.

1. Engine: N run groups of a sweep (names `opt=..._lr=..._bs=..._seed=...`, a learning-rate curve
   each, HParams records for half of them), curves from `curves.py`. `diagnose` builds the whole
   report (sweep included); `add_sweep` redoes the cross-run part alone (names, records, analysis).
2. Plugin: on a logdir of `make_logdir.py` read through TensorBoard's Python multiplexer
   provider, the plugin's cold and warm `report` (its `ReportCache`) against the HParams-record
   listing every request now makes (`readers.hparams_records.read_hparams`).

    python benchmarks/sweep_cost.py [--runs 1000] [--points 500] [--reps 5] [--logdir-size 100x4x1000]

Prints a Markdown table (medians of --reps).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import curves  # noqa: E402
import make_logdir  # noqa: E402

from tb_lossdoctor.engine import add_sweep, diagnose  # noqa: E402
from tb_lossdoctor.series import make_series  # noqa: E402


def timed(fn, reps):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def sweep_series(n_runs: int, points: int):
    """Series and HParams records of an n-run sweep: optimiser x lr x batch size x seed."""
    series, records = [], {}
    grid = [(o, lr, bs) for o in ("adam", "sgd") for lr in (1e-4, 1e-3, 1e-2, 1e-1, 1.0) for bs in (32, 128)]
    for i in range(n_runs):
        opt, lr, bs = grid[i % len(grid)]
        name = f"sweep/opt={opt}_lr={lr:g}_bs={bs}_seed={i // len(grid)}"
        rng = np.random.default_rng([7, i])
        kind = curves.run_spec(7, i).kind
        train, val = curves.loss_curves(kind, points, rng)
        steps = np.arange(points)
        series.append(make_series(name, "train_loss", steps, train))
        series.append(make_series(name, "val_loss", steps[::10], val[::10]))
        series.append(make_series(name, "lr", steps, np.full(points, lr)))
        if i % 2:
            records[name] = {"optimizer": opt, "learning_rate": lr, "batch_size": float(bs)}
    return series, records


def bench_engine(n_runs, points, reps):
    series, records = sweep_series(n_runs, points)
    report = diagnose(series, hparams=records)
    t_report = timed(lambda: diagnose(series, hparams=records), reps)
    t_sweep = timed(lambda: add_sweep(report, records), reps)
    sweep = report["sweep"] or {}
    return {"runs": n_runs, "points": points, "report_s": t_report, "sweep_s": t_sweep,
            "ratio": t_sweep / t_report, "findings": sweep.get("findings_count", 0)}


def bench_plugin(size, reps):
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider as tb_dp
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem

    from tb_lossdoctor.readers.hparams_records import read_hparams
    from tb_lossdoctor.report_cache import ReportCache

    runs, tags, points = (int(x) for x in size.lower().split("x"))
    logdir = make_logdir.default_out(runs, tags, points, 10, 0)
    make_logdir.generate(logdir, runs, tags, points, 10, 0)
    mux = pem.EventMultiplexer(tensor_size_guidance={"scalars": 0})
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    provider = tb_dp.MultiplexerDataProvider(mux, logdir)
    ctx = context.RequestContext()
    colds = []
    for _ in range(reps):
        cache = ReportCache()
        t = time.perf_counter()
        cache.report_json(provider, ctx, "", sample_limit=None)
        colds.append(time.perf_counter() - t)
    warm = timed(lambda: cache.report_json(provider, ctx, "", sample_limit=None), reps * 10)
    records = timed(lambda: read_hparams(provider, ctx, ""), reps * 10)
    return {"size": size, "cold_s": statistics.median(colds), "warm_s": warm, "records_s": records,
            "records_vs_cold": records / statistics.median(colds), "records_vs_warm": records / warm}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, nargs="+", default=[200, 1000])
    p.add_argument("--points", type=int, default=500)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--logdir-size", default="100x4x1000")
    args = p.parse_args(argv)
    print("| measurement | sweep part | report | ratio |")
    print("|---|---|---|---|")
    for n in args.runs:
        r = bench_engine(n, args.points, args.reps)
        print(f"| engine, {r['runs']} run groups x {r['points']} points ({r['findings']} findings) | "
              f"`add_sweep` {r['sweep_s'] * 1000:.1f} ms | `diagnose` {r['report_s'] * 1000:.0f} ms | "
              f"{r['ratio'] * 100:.1f}% |", flush=True)
    r = bench_plugin(args.logdir_size, args.reps)
    print(f"| plugin, logdir {r['size']}, HParams listing per request | {r['records_s'] * 1000:.2f} ms | "
          f"cold report {r['cold_s'] * 1000:.0f} ms | {r['records_vs_cold'] * 100:.2f}% |")
    print(f"| plugin, same, against a warm (cached) report | {r['records_s'] * 1000:.2f} ms | "
          f"warm report {r['warm_s'] * 1000:.2f} ms | {r['records_vs_warm'] * 100:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
