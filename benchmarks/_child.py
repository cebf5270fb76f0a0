"""Measurement children for benchmarks/run.py: each runs in its own fresh process and prints one
`RESULT {json}` line. Not meant to be run by hand (but can be, for debugging):

    python benchmarks/_child.py read LOGDIR --reader server
    python benchmarks/_child.py plugin LOGDIR --backend rust --reps 5
    python benchmarks/_child.py tbmem LOGDIR --backend python --plugin on
    python benchmarks/_child.py engine --series 1000 --points 1000 --reps 3
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
BASE = "/data/plugin/lossdoctor"


def result(obj):
    sys.stdout.write("RESULT " + json.dumps(obj) + "\n")
    sys.stdout.flush()


def own_peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def load_manifest(logdir):
    with open(os.path.join(logdir, "bench_manifest.json")) as f:
        return json.load(f)


# -- 1. the reader alone -----------------------------------------------------------------------


def cmd_read(args):
    t0 = time.perf_counter()
    from tb_lossdoctor.readers.logdir import read_logdir

    series, problems, info = read_logdir(args.logdir, args.reader, avoid_tensorflow=True)
    result({
        "seconds_in_process": time.perf_counter() - t0,
        "reader": info.get("reader"),
        "series": len(series),
        "points": int(sum(len(s) for s in series)),
        "peak_rss_mb": own_peak_rss_mb(),
    })


def cmd_tbread(args):
    """The issue's baseline: TensorBoard's data server loads the logdir, then the scalars come
    back through TensorBoard's public data provider API (`list_scalars` + `read_scalars`)."""
    t0 = time.perf_counter()
    from tensorboard import context
    from tensorboard.data import provider as tb_provider

    from tb_lossdoctor.readers.data_server import DataServer

    ctx = context.RequestContext()
    with DataServer(args.logdir) as server:
        listing = server.provider.list_runs(ctx, experiment_id="")
        data = server.provider.read_scalars(
            ctx, experiment_id="", plugin_name="scalars", downsample=10**9,
            run_tag_filter=tb_provider.RunTagFilter(runs=[r.run_name for r in listing]))
    points = sum(len(v) for tags in data.values() for v in tags.values())
    result({"seconds_in_process": time.perf_counter() - t0, "points": int(points),
            "series": sum(len(t) for t in data.values()), "peak_rss_mb": own_peak_rss_mb()})


# -- TensorBoard's own app (as tests/test_plugin_http.py builds it) ----------------------------


class App:
    def __init__(self, logdir, backend, with_plugin=True, extra=()):
        from tensorboard import default, program
        from tensorboard.backend import application
        from werkzeug.test import Client

        plugins = default.get_plugins() if with_plugin else default.get_static_plugins()
        tb = program.TensorBoard(plugins=plugins)
        argv = ["", "--logdir", logdir, *extra]
        if backend == "python":
            argv += ["--load_fast", "false", "--reload_task", "blocking", "--reload_interval", "0"]
        else:
            argv += ["--load_fast", "true", "--reload_interval", "0"]  # data server: --reload=once
        tb.configure(argv)
        self.flags = tb.flags
        t0 = time.perf_counter()
        self.provider, self.multiplexer = tb._make_data_provider()
        self.ingester = tb._ingester
        self.app = application.TensorBoardWSGIApp(
            tb.flags, tb.plugin_loaders, self.provider, tb.assets_zip_provider, self.multiplexer
        )
        self.client = Client(self.app)
        self.plugin = next((p for p in self.app._plugins if p.plugin_name == "lossdoctor"), None)
        self.wait_loaded(load_manifest(logdir))
        self.load_seconds = time.perf_counter() - t0

    def listing(self):
        from tensorboard import context

        return self.provider.list_scalars(context.RequestContext(), experiment_id="", plugin_name="scalars")

    def wait_loaded(self, manifest, timeout=3600):
        want = {(r, t): step for r, t, step, _ in manifest["series_last"]}
        deadline = time.monotonic() + timeout
        while True:
            have = {(r, t): ts.max_step for r, tags in self.listing().items() for t, ts in tags.items()}
            if have == want:
                return
            if time.monotonic() > deadline:
                raise SystemExit("provider never loaded the whole logdir (%d/%d series)" % (len(have), len(want)))
            time.sleep(0.1)

    def close(self):
        handle = getattr(self.ingester, "_stdin_handle", None)
        if handle is not None:
            handle.close()


def _runs_tags(listing):
    runs = sorted(listing)
    tags = sorted({t for r in listing.values() for t in r})
    return runs, tags


# -- 2. the report route vs read_scalars ----------------------------------------------------------


def cmd_plugin(args):
    from tensorboard import context
    from tensorboard.data import provider as tb_provider

    from tb_lossdoctor.readers.provider import NO_DOWNSAMPLING, read_series
    from tb_lossdoctor import engine  # noqa: F401  (imported up front: not part of any timing)

    app = App(args.logdir, args.backend)
    ctx = context.RequestContext()
    runs, tags = _runs_tags(app.listing())

    def read_scalars():
        return app.provider.read_scalars(
            ctx, experiment_id="", plugin_name="scalars", downsample=NO_DOWNSAMPLING,
            run_tag_filter=tb_provider.RunTagFilter(runs=runs, tags=tags),
        )

    def report(gzip=False):
        headers = {"Accept-Encoding": "gzip, deflate, br"} if gzip else {}
        resp = app.client.get(BASE + "/report", headers=headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
        return resp.get_data()

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    # warm-up (imports, gRPC channel, first-call caches) outside the timings
    read_scalars()
    report()
    t_read, t_list, t_series, t_cold, t_warm, t_warm_gz = [], [], [], [], [], []
    body = None
    for i in range(args.reps):
        steps = [
            ("read", lambda: timed(read_scalars)[0]),
            ("list", lambda: timed(app.listing)[0]),
            ("series", lambda: timed(lambda: read_series(app.provider, ctx, "", runs=runs, tags=tags))[0]),
        ]
        if i % 2:
            steps.reverse()
        for name, fn in steps:
            {"read": t_read, "list": t_list, "series": t_series}[name].append(fn())
        app.plugin._cache.clear()
        dt, body = timed(report)
        t_cold.append(dt)
        for _ in range(3):
            t_warm.append(timed(report)[0])
            t_warm_gz.append(timed(lambda: report(gzip=True))[0])
    rep = json.loads(body)
    profile = None
    if args.profile:
        import cProfile
        import io
        import pstats

        app.plugin._cache.clear()
        prof = cProfile.Profile()
        prof.enable()
        report()
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(35)
        buf.write("\n\n---- by internal time ----\n")
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        prof = cProfile.Profile()
        prof.enable()
        report(gzip=True)
        prof.disable()
        buf.write("\n\n==== one WARM request (nothing new), as a browser sends it (Accept-Encoding: gzip) ====\n")
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        with open(args.profile, "w") as f:
            f.write(buf.getvalue())
        profile = args.profile
    app.close()
    med = statistics.median
    result({
        "backend": args.backend,
        "load_seconds": app.load_seconds,
        "runs": len(runs),
        "series_in_report": sum(len(r["series"]) for r in rep["runs"]),
        "groups_in_report": len(rep["runs"]),
        "read_scalars": med(t_read),
        "list_scalars": med(t_list),
        "read_series": med(t_series),
        "report_cold": med(t_cold),
        "report_warm": med(t_warm),
        "report_warm_gzip": med(t_warm_gz),
        "body_bytes": len(body),
        "samples": {"read": t_read, "cold": t_cold, "warm": t_warm, "warm_gzip": t_warm_gz},
        "profile": profile,
    })


# -- 4. TensorBoard's memory with and without the plugin ------------------------------------------


def cmd_tbmem(args):
    from urllib.parse import urlencode

    with_plugin = args.plugin == "on"
    t0 = time.perf_counter()
    app = App(args.logdir, args.backend, with_plugin=with_plugin)
    load = time.perf_counter() - t0
    by_tag = {}
    for run, tags in app.listing().items():
        for tag in tags:
            by_tag.setdefault(tag, []).append(run)
    # what the Scalars dashboard does: one scalars_multirun POST per tag, all runs
    t1 = time.perf_counter()
    n_points = 0
    for tag, runs in sorted(by_tag.items()):
        resp = app.client.post(
            "/data/plugin/scalars/scalars_multirun",
            data=urlencode([("tag", tag)] + [("runs", r) for r in runs]),
            content_type="application/x-www-form-urlencoded",
        )
        assert resp.status_code == 200, resp.status_code
        n_points += sum(len(v) for v in json.loads(resp.get_data()).values())
    scalars_seconds = time.perf_counter() - t1
    report_seconds = None
    if with_plugin:
        t2 = time.perf_counter()
        resp = app.client.get(BASE + "/report")
        assert resp.status_code == 200
        report_seconds = time.perf_counter() - t2
    peak = own_peak_rss_mb()
    app.close()
    result({"load_seconds": load, "scalars_seconds": scalars_seconds, "scalars_points": n_points,
            "report_seconds": report_seconds, "peak_rss_mb": peak})


# -- 3. the engine alone -------------------------------------------------------------------------


def build_series(n_series, points, seed=0, tags=4, val_every=10):
    import curves
    from tb_lossdoctor.series import make_series

    out = []
    i = 0
    while len(out) < n_series:
        _, data = curves.run_series(seed, i, tags, points, val_every)
        for folder, tag, steps, values in data:
            wall = 1_700_000_000.0 + steps * 0.05
            out.append(make_series(folder, tag, steps, values, wall))
        i += 1
    return out[:n_series] if len(out) == n_series else out


def cmd_engine(args):
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    except (AttributeError, OSError):
        pass
    from tb_lossdoctor.engine import diagnose

    series = build_series(args.series, args.points)
    # a run group is whole: round up to complete runs so no group loses its validation curve
    n_points = int(sum(len(s) for s in series))
    diagnose(series[: min(len(series), 40)])  # warm-up (imports, first-call caches)
    times = []
    for _ in range(args.reps):
        t = time.perf_counter()
        rep = diagnose(series)
        times.append(time.perf_counter() - t)
    if args.profile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        diagnose(series)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
        buf.write("\n\n---- cumulative ----\n")
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(40)
        with open(args.profile, "w") as f:
            f.write(buf.getvalue())
    med = statistics.median(times)
    findings = {}
    for r in rep["runs"]:
        for f in r["findings"]:
            findings[f["code"]] = findings.get(f["code"], 0) + 1
    result({"series": len(series), "points": n_points, "groups": len(rep["runs"]), "seconds": med,
            "samples": times, "points_per_second": n_points / med, "findings": findings})


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("read")
    r.add_argument("logdir")
    r.add_argument("--reader", default="server")
    tb = sub.add_parser("tbread")
    tb.add_argument("logdir")
    pl = sub.add_parser("plugin")
    pl.add_argument("logdir")
    pl.add_argument("--backend", choices=("python", "rust"), required=True)
    pl.add_argument("--reps", type=int, default=5)
    pl.add_argument("--profile", default=None)
    m = sub.add_parser("tbmem")
    m.add_argument("logdir")
    m.add_argument("--backend", choices=("python", "rust"), required=True)
    m.add_argument("--plugin", choices=("on", "off"), required=True)
    e = sub.add_parser("engine")
    e.add_argument("--series", type=int, required=True)
    e.add_argument("--points", type=int, default=1000)
    e.add_argument("--reps", type=int, default=3)
    e.add_argument("--profile", default=None)
    args = p.parse_args()
    {"read": cmd_read, "tbread": cmd_tbread, "plugin": cmd_plugin, "tbmem": cmd_tbmem,
     "engine": cmd_engine}[args.cmd](args)


if __name__ == "__main__":
    main()
