#!/usr/bin/env python
"""Print a compact summary of every scalar curve under a log directory (read with TensorBoard).

Usage: python demo/summarize.py [LOGDIR] [--runs PREFIX ...] [--series N]
"""

from __future__ import annotations

import argparse
import math
import os

from tensorboard import context
from tensorboard.backend.event_processing import data_provider as dp
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
from tensorboard.data import provider as P

HERE = os.path.dirname(os.path.abspath(__file__))


def fmt(v):
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logdir", nargs="?", default=os.path.join(HERE, "logs"))
    ap.add_argument("--runs", nargs="*", default=None, help="run-name prefixes to show")
    ap.add_argument("--series", type=int, default=12, help="print N evenly spaced values")
    args = ap.parse_args()
    m = pem.EventMultiplexer(tensor_size_guidance={"scalars": 0})
    m.AddRunsFromDirectory(args.logdir)
    m.Reload()
    prov = dp.MultiplexerDataProvider(m, args.logdir)
    ctx = context.RequestContext()
    listing = prov.list_scalars(ctx, experiment_id="", plugin_name="scalars")
    runs = sorted(r for r in listing if not args.runs or any(r.startswith(p) for p in args.runs))
    data = prov.read_scalars(
        ctx, experiment_id="", plugin_name="scalars", downsample=10**9,
        run_tag_filter=P.RunTagFilter(runs, None),
    )
    for run in runs:
        for tag in sorted(data.get(run, {})):
            pts = data[run][tag]
            steps = [p.step for p in pts]
            vals = [p.value for p in pts]
            finite = [(v, s) for v, s in zip(vals, steps) if math.isfinite(v)]
            nonfin = next((s for v, s in zip(vals, steps) if not math.isfinite(v)), None)
            vmin, smin = min(finite) if finite else (float("nan"), None)
            vmax, smax = max(finite) if finite else (float("nan"), None)
            k = max(1, len(vals) // max(args.series, 1))
            sample = " ".join(fmt(v) for v in vals[::k])
            print(
                f"{run}:{tag}  n={len(pts)} steps {steps[0]}..{steps[-1]}  first={fmt(vals[0])} "
                f"min={fmt(vmin)}@{smin} max={fmt(vmax)}@{smax} last={fmt(vals[-1])}"
                + (f" first_nonfinite@{nonfin}" if nonfin is not None else "")
            )
            if args.series:
                print(f"    [{sample}]")


if __name__ == "__main__":
    main()
