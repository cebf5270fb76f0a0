"""Performance benchmarks of tb-lossdoctor against TensorBoard itself (not part of pytest).

Quick set (a few minutes, logdirs cached under <temp folder>/lossdoctor_bench):

    python benchmarks/run.py

Larger set (documented in benchmarks/README.md):

    python benchmarks/run.py --sizes 100x4x1000 1000x4x1000 --engine-series 100 1000 10000

Every comparison is made in the same run, against a baseline measured alongside it (the machine
is noisy): medians of `--reps` repetitions, alternating the order of the things compared.
Sections (select with --only): cli, plugin, engine, memory, concurrency.
Results: a JSON file and a Markdown summary (--out-dir, default <temp folder>/lossdoctor_bench/results).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_logdir  # noqa: E402

PY = sys.executable
CHILD = os.path.join(HERE, "_child.py")
SECTIONS = ("cli", "plugin", "engine", "memory", "concurrency")
MB = 1024.0 * 1024.0


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs) if xs else None


def parse_size(text):
    runs, tags, points = (int(x) for x in text.lower().split("x"))
    return runs, tags, points


def ensure_logdir(size, val_every=10, seed=0):
    runs, tags, points = parse_size(size)
    out = make_logdir.default_out(runs, tags, points, val_every, seed)
    t = time.monotonic()
    manifest = make_logdir.generate(out, runs, tags, points, val_every, seed)
    log(f"[logdir] {out}: {manifest['series']} series, {manifest['total_points']:,} points "
        f"({time.monotonic() - t:.1f} s here, generated in {manifest['generate_seconds']} s)")
    return out, manifest


# -- process-tree memory -----------------------------------------------------------------------


def _proc_table():
    """{pid: ppid} of every process (from /proc/*/stat)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2:].split()
        table[int(name)] = int(rest[1])
    return table


def _tree(root):
    table = _proc_table()
    children = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory(threading.Thread):
    """Samples the summed RSS of a process and all its descendants (every `interval` s), and the
    last-seen peak (VmHWM) of each process of the tree."""

    def __init__(self, pid, interval=0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_sum_kb = 0
        self.hwm_kb = {}
        self._stop_evt = threading.Event()

    def run(self):
        while not self._stop_evt.is_set():
            total = 0
            for pid in _tree(self.pid):
                total += _status_kb(pid, "VmRSS:")
                hwm = _status_kb(pid, "VmHWM:")
                if hwm:
                    self.hwm_kb[pid] = max(hwm, self.hwm_kb.get(pid, 0))
            self.peak_sum_kb = max(self.peak_sum_kb, total)
            self._stop_evt.wait(self.interval)

    def stop(self):
        self._stop_evt.set()
        self.join()

    @property
    def peak_sum_mb(self):
        return self.peak_sum_kb / 1024.0

    @property
    def hwm_sum_mb(self):
        return sum(self.hwm_kb.values()) / 1024.0


def run_child(argv, *, memory=False, timeout=7200, env=None, stdout_path=None):
    """Run a subprocess; returns dict(wall, rc, maxrss_mb (wait4: the child and its reaped
    descendants, max), tree_peak_mb (sampled sum of the tree's RSS) if memory, stdout text)."""
    out = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    err_path = os.path.join(make_logdir.DEFAULT_ROOT, "last_stderr.txt")
    os.makedirs(os.path.dirname(err_path), exist_ok=True)
    with open(err_path, "wb") as err:
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        sampler = TreeMemory(p.pid) if memory else None
        if sampler:
            sampler.start()
        text = b""
        if stdout_path is None:
            text = p.stdout.read()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if sampler:
            sampler.stop()
    if stdout_path:
        out.close()
    if p.returncode != 0:
        with open(err_path, "rb") as f:
            tail = f.read()[-3000:].decode(errors="replace")
        raise RuntimeError(f"{argv} failed with {p.returncode}:\n{tail}")
    # (wait4's ru_maxrss is not used: Linux carries the parent's RSS at fork time into it)
    res = {"wall": wall, "rc": p.returncode, "stdout": text.decode(errors="replace")}
    if sampler:
        res["tree_peak_mb"] = sampler.peak_sum_mb
        res["tree_hwm_sum_mb"] = sampler.hwm_sum_mb
    return res


def child_result(res):
    for line in res["stdout"].splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("no RESULT line in child output:\n" + res["stdout"][-2000:])


# -- 1. CLI end to end vs the reader alone -------------------------------------------------------


def bench_cli(logdir, manifest, reps, python_reps):
    cli = [PY, "-m", "tb_lossdoctor", logdir, "--format", "json"]
    server = [PY, CHILD, "read", logdir, "--reader", "server"]
    tensorboard = [PY, CHILD, "tbread", logdir]
    pyreader = [PY, CHILD, "read", logdir, "--reader", "python"]
    times = {"cli": [], "server": [], "tensorboard": [], "python": [], "cli_python": []}
    report_runs = None
    out_path = os.path.join(make_logdir.DEFAULT_ROOT, "cli_out.json")
    for i in range(reps):
        order = [("tensorboard", tensorboard), ("server", server), ("cli", cli)]
        if i % 2:
            order.reverse()
        for name, argv in order:
            r = run_child(argv, stdout_path=out_path if name == "cli" else None)
            times[name].append(r["wall"])
            if name == "cli":
                with open(out_path) as f:
                    rep = json.load(f)
                report_runs = len(rep["runs"])
            else:
                got = child_result(r)
                assert got["points"] == manifest["total_points"], got
        log(f"  [cli] rep {i + 1}/{reps}: tensorboard load+read_scalars {times['tensorboard'][-1]:.2f} s, "
            f"server reader {times['server'][-1]:.2f} s, cli {times['cli'][-1]:.2f} s")
    for i in range(python_reps):
        r = run_child(pyreader)
        times["python"].append(r["wall"])
        r = run_child(cli + ["--reader", "python"], stdout_path=out_path)
        times["cli_python"].append(r["wall"])
        log(f"  [cli] python rep {i + 1}/{python_reps}: python reader {times['python'][-1]:.2f} s, "
            f"cli --reader python {times['cli_python'][-1]:.2f} s")
    m = {k: med(v) for k, v in times.items()}
    return {
        "median_seconds": m,
        "samples": times,
        "report_runs": report_runs,
        "ratio_cli_vs_server_reader": m["cli"] / m["server"],
        "ratio_cli_vs_tensorboard": m["cli"] / m["tensorboard"],
        "ratio_cli_python_vs_python_reader": (m["cli_python"] / m["python"]) if m["python"] else None,
    }


# -- 2. the report route vs read_scalars -----------------------------------------------------------


def bench_plugin(logdir, reps, profile_dir=None, tag="", backends=("python", "rust")):
    out = {}
    for backend in backends:
        argv = [PY, CHILD, "plugin", logdir, "--backend", backend, "--reps", str(reps)]
        if profile_dir:
            argv += ["--profile", os.path.join(profile_dir, f"report_{backend}_{tag}.txt")]
        r = child_result(run_child(argv))
        r["ratio_cold_vs_read"] = r["report_cold"] / r["read_scalars"]
        r["ratio_warm_vs_cold"] = r["report_warm"] / r["report_cold"]
        log(f"  [plugin] {backend}: load {r['load_seconds']:.1f} s, read_scalars {r['read_scalars']:.3f} s, "
            f"cold report {r['report_cold']:.3f} s ({r['ratio_cold_vs_read']:.2f}x), "
            f"warm {r['report_warm'] * 1000:.1f} ms")
        out[backend] = r
    return out


# -- 3. the engine alone ----------------------------------------------------------------------------


def bench_engine(series_counts, points, reps, profile_dir=None):
    out = []
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for n in series_counts:
        argv = [PY, CHILD, "engine", "--series", str(n), "--points", str(points), "--reps", str(reps)]
        if profile_dir and n == max(series_counts):
            argv += ["--profile", os.path.join(profile_dir, f"engine_{n}.txt")]
        r = child_result(run_child(argv, env=env))
        log(f"  [engine] {n} series, {r['points']:,} points: {r['seconds']:.3f} s, "
            f"{r['points_per_second'] / 1e6:.2f} M points/s")
        out.append(r)
    base = out[0]
    for r in out:
        r["seconds_per_series_vs_first"] = (r["seconds"] / r["series"]) / (base["seconds"] / base["series"])
    return out


# -- 4. memory --------------------------------------------------------------------------------------


def bench_memory(logdir, manifest, tiny_logdir, backends=("python", "rust")):
    own = manifest["total_points"] * 24 / MB
    res = {"scalars_own_mb": own}
    cli = lambda d: [PY, "-m", "tb_lossdoctor", d, "--format", "json"]  # noqa: E731
    for name, argv in [
        ("cli", cli(logdir)),
        ("cli_tiny", cli(tiny_logdir)),
        ("server_reader", [PY, CHILD, "read", logdir, "--reader", "server"]),
        ("server_reader_tiny", [PY, CHILD, "read", tiny_logdir, "--reader", "server"]),
    ]:
        r = run_child(argv, memory=True, stdout_path=os.path.join(make_logdir.DEFAULT_ROOT, "mem_out.txt"))
        res[name] = {"tree_peak_mb": r["tree_peak_mb"], "tree_hwm_sum_mb": r["tree_hwm_sum_mb"],
                     "seconds": r["wall"]}
        log(f"  [memory] {name}: tree peak {r['tree_peak_mb']:.0f} MB (sum of per-process peaks "
            f"{r['tree_hwm_sum_mb']:.0f} MB)")
    res["cli_data_mb"] = res["cli"]["tree_hwm_sum_mb"] - res["cli_tiny"]["tree_hwm_sum_mb"]
    res["server_reader_data_mb"] = (res["server_reader"]["tree_hwm_sum_mb"]
                                    - res["server_reader_tiny"]["tree_hwm_sum_mb"])
    runs = [(b, p, logdir, "") for b in backends for p in ("off", "on")]
    runs += [("rust", p, tiny_logdir, "_tiny") for p in ("off", "on")]
    for backend, plugin, where, suffix in runs:
        r = run_child([PY, CHILD, "tbmem", where, "--backend", backend, "--plugin", plugin], memory=True)
        c = child_result(r)
        key = f"tb_{backend}_plugin_{plugin}{suffix}"
        res[key] = {"tree_peak_mb": r["tree_peak_mb"], "tree_hwm_sum_mb": r["tree_hwm_sum_mb"],
                    "python_peak_mb": c["peak_rss_mb"], "report_seconds": c["report_seconds"],
                    "scalars_seconds": c["scalars_seconds"]}
        log(f"  [memory] TensorBoard {backend}{suffix}, plugin {plugin}: tree peak {r['tree_peak_mb']:.0f} MB, "
            f"python process peak {c['peak_rss_mb']:.0f} MB")
    for backend in list(backends) + ["rust_tiny"]:
        b, _, suffix = backend.partition("_")
        suffix = "_" + suffix if suffix else ""
        on, off = res[f"tb_{b}_plugin_on{suffix}"], res[f"tb_{b}_plugin_off{suffix}"]
        res[f"tb_{backend}_plugin_added_mb"] = on["tree_hwm_sum_mb"] - off["tree_hwm_sum_mb"]
    return res


# -- 5. concurrency ------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=600, gzip_ok=False):
    """GET; with gzip_ok, as a browser does (TensorBoard then gzips JSON answers); returns the
    decoded body."""
    import gzip

    t = time.perf_counter()
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzip_ok else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
        status = resp.status
        if resp.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    return status, body, time.perf_counter() - t


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(q / 100.0 * (len(xs) - 1)))))
    return xs[k]


def bench_concurrency(logdir, manifest, n_requests, load_fast):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [PY, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port),
            "--reload_interval", "0", "--load_fast", load_fast]
    errf = open(os.path.join(make_logdir.DEFAULT_ROOT, "tensorboard_stderr.txt"), "wb")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errf)
    try:
        want = len(manifest["series_last"])
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError("tensorboard exited early (see tensorboard_stderr.txt in the bench folder)")
            try:
                _, body, _ = _get(base + "/data/plugin/scalars/tags", timeout=30)
                if sum(len(t) for t in json.loads(body).values()) == want:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > 3600:
                raise RuntimeError("tensorboard never loaded the logdir")
            time.sleep(0.5)
        load_seconds = time.monotonic() - t0
        url = base + "/data/plugin/lossdoctor/report"
        waves = {}
        for wave in ("cold", "warm"):
            barrier = threading.Barrier(n_requests)

            def one(_):
                barrier.wait()
                return _get(url, gzip_ok=True)

            t = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(n_requests) as pool:
                results = list(pool.map(one, range(n_requests)))
            total = time.perf_counter() - t
            statuses = [s for s, _, _ in results]
            bodies = {b for _, b, _ in results}
            lat = [d for _, _, d in results]
            waves[wave] = {
                "requests": n_requests, "ok": statuses.count(200), "distinct_bodies": len(bodies),
                "p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99), "max": max(lat),
                "wall": total, "body_bytes": len(next(iter(bodies))),
            }
            log(f"  [concurrency] {load_fast=} {wave}: {statuses.count(200)}/{n_requests} OK, "
                f"{len(bodies)} distinct bodies, p50 {waves[wave]['p50']:.2f} s, p99 {waves[wave]['p99']:.2f} s")
        return {"load_fast": load_fast, "load_seconds": load_seconds, "waves": waves}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errf.close()


# -- reporting ------------------------------------------------------------------------------------


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numpy
    import tensorboard

    try:
        from importlib.metadata import version

        ds = version("tensorboard-data-server")
    except Exception:
        ds = "?"
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "tensorboard": tensorboard.__version__, "data_server": ds, "numpy": numpy.__version__,
            "kernel": platform.release()}


def yes(ok):
    return "**yes**" if ok else "**no**"


def markdown(results):
    m = results["machine"]
    lines = [f"Machine: {m['nproc']} cores, {m['cpu']}; Python {m['python']}, TensorBoard {m['tensorboard']}, "
             f"tensorboard-data-server {m['data_server']}, numpy {m['numpy']}. "
             f"Medians of {results['args']['reps']} repetitions unless noted.", ""]
    for size, s in results["sizes"].items():
        man = s["manifest"]
        lines.append(f"### {size}: {man['runs']} runs ({man['run_folders']} run folders), {man['series']} series, "
                     f"{man['total_points']:,} points, {man['bytes_on_disk'] / MB:.0f} MB of event files")
        lines.append("")
        lines.append("| measurement | value | baseline (same run) | ratio | target | met |")
        lines.append("|---|---|---|---|---|---|")
        if "cli" in s:
            c = s["cli"]
            ms = c["median_seconds"]
            lines.append(f"| CLI `--format json` (data server), wall | {ms['cli']:.2f} s | TensorBoard's data server "
                         f"load + `read_scalars` {ms['tensorboard']:.2f} s | {c['ratio_cli_vs_tensorboard']:.2f}x | "
                         f"<= 1.5x | {yes(c['ratio_cli_vs_tensorboard'] <= 1.5)} |")
            lines.append(f"| CLI `--format json` (data server), wall | {ms['cli']:.2f} s | our reader alone (columnar) "
                         f"{ms['server']:.2f} s | {c['ratio_cli_vs_server_reader']:.2f}x | (reference) | |")
            if ms.get("python"):
                lines.append(f"| CLI `--reader python`, wall (n={len(c['samples']['python'])}) | {ms['cli_python']:.2f} s | "
                             f"Python reader alone {ms['python']:.2f} s | {c['ratio_cli_python_vs_python_reader']:.2f}x "
                             f"| (reference) | |")
        if "plugin" in s:
            for backend, r in s["plugin"].items():
                label = "Python multiplexer" if backend == "python" else "Rust data server"
                lines.append(f"| report cold, {label} | {r['report_cold'] * 1000:.0f} ms | one `read_scalars` "
                             f"{r['read_scalars'] * 1000:.0f} ms | {r['ratio_cold_vs_read']:.2f}x | <= 1.3x | "
                             f"{yes(r['ratio_cold_vs_read'] <= 1.3)} |")
                lines.append(f"| report warm, {label} | {r['report_warm'] * 1000:.1f} ms | report cold "
                             f"{r['report_cold'] * 1000:.0f} ms | {r['ratio_warm_vs_cold'] * 100:.1f}% | < 10% | "
                             f"{yes(r['ratio_warm_vs_cold'] < 0.10)} |")
                gz = r["report_warm_gzip"] / r["report_cold"]
                lines.append(f"| report warm + gzip (browser), {label}, body {r['body_bytes'] / 1024:.0f} KiB | "
                             f"{r['report_warm_gzip'] * 1000:.1f} ms | report cold {r['report_cold'] * 1000:.0f} ms | "
                             f"{gz * 100:.1f}% | < 10% | {yes(gz < 0.10)} |")
        if "memory" in s:
            mm = s["memory"]
            own = mm["scalars_own_mb"]
            lines.append(f"| CLI peak memory (CLI + data server) | {mm['cli']['tree_hwm_sum_mb']:.0f} MB | "
                         f"reader alone {mm['server_reader']['tree_hwm_sum_mb']:.0f} MB | "
                         f"{mm['cli']['tree_hwm_sum_mb'] / mm['server_reader']['tree_hwm_sum_mb']:.2f}x | | |")
            lines.append(f"| CLI memory for the data (minus CLI on a 1-run logdir); reader alone: "
                         f"{mm['server_reader_data_mb']:.0f} MB | {mm['cli_data_mb']:.0f} MB | "
                         f"scalars' own size {own:.1f} MB | {mm['cli_data_mb'] / own:.1f}x | <= 2x | "
                         f"{yes(mm['cli_data_mb'] <= 2 * own)} |")
            for backend in [b for b in ("python", "rust") if f"tb_{b}_plugin_on" in mm]:
                on, off = mm[f"tb_{backend}_plugin_on"], mm[f"tb_{backend}_plugin_off"]
                added = mm[f"tb_{backend}_plugin_added_mb"]
                label = "Python multiplexer" if backend == "python" else "Rust data server"
                lines.append(f"| TensorBoard + plugin peak, {label} | {on['tree_hwm_sum_mb']:.0f} MB | without the "
                             f"plugin {off['tree_hwm_sum_mb']:.0f} MB | {on['tree_hwm_sum_mb'] / off['tree_hwm_sum_mb']:.2f}x | | |")
                lines.append(f"| memory the plugin adds, {label} | {added:.0f} MB | scalars' own size {own:.1f} MB | "
                             f"{added / own:.1f}x | <= 2x | {yes(added <= 2 * own)} |")
        lines.append("")
    if results.get("engine"):
        lines.append("### Engine alone (in-memory series, one core)")
        lines.append("")
        lines.append("| series | points | seconds | points/s | time per series vs smallest | target >= 2 M points/s |")
        lines.append("|---|---|---|---|---|---|")
        for r in results["engine"]:
            lines.append(f"| {r['series']:,} | {r['points']:,} | {r['seconds']:.3f} | {r['points_per_second'] / 1e6:.2f} M | "
                         f"{r['seconds_per_series_vs_first']:.2f}x | {yes(r['points_per_second'] >= 2e6)} |")
        lines.append("")
    for c in results.get("concurrency", []):
        lines.append(f"### Concurrency: {c['requests']} concurrent `report` requests (gzip accepted, as a browser), real `tensorboard "
                     f"--load_fast={c['load_fast']}` on 127.0.0.1, {c['size']}")
        lines.append("")
        lines.append("| wave | OK | distinct bodies | p50 | p90 | p99 | max | wall |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for wave, w in c["waves"].items():
            lines.append(f"| {wave} | {w['ok']}/{w['requests']} | {w['distinct_bodies']} | {w['p50']:.2f} s | "
                         f"{w['p90']:.2f} s | {w['p99']:.2f} s | {w['max']:.2f} s | {w['wall']:.2f} s |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=["100x4x1000"], help="RUNSxTAGSxPOINTS logdirs to measure")
    p.add_argument("--reps", type=int, default=5, help="repetitions (medians)")
    p.add_argument("--python-reps", type=int, default=1, help="repetitions of the (slow) pure-Python reader")
    p.add_argument("--engine-series", type=int, nargs="+", default=[100, 1000, 10000])
    p.add_argument("--engine-points", type=int, default=1000)
    p.add_argument("--engine-reps", type=int, default=3)
    p.add_argument("--concurrency-size", default="1000x4x1000")
    p.add_argument("--concurrency-requests", type=int, default=50)
    p.add_argument("--concurrency-load-fast", nargs="+", default=["true"],
                   help="TensorBoard backends for the concurrency test (false = Python multiplexer: slow, "
                        "about 35 s and 0.9 GB per 100 runs of 4 x 1,000 points)")
    p.add_argument("--python-backend-max-runs", type=int, default=200,
                   help="measure TensorBoard's Python multiplexer (--load_fast=false) and the pure-Python "
                        "reader only up to this many runs (they take ~30 s and ~1 GB per 100 runs)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--profile", action="store_true", help="write cProfile texts of the engine and report route")
    p.add_argument("--out-dir", default=os.path.join(make_logdir.DEFAULT_ROOT, "results"))
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    profile_dir = args.out_dir if args.profile else None
    shown_args = {**vars(args), "out_dir": os.path.basename(os.path.normpath(args.out_dir))}
    results = {"machine": machine(), "args": shown_args, "sizes": {}, "engine": [], "concurrency": []}
    started = time.monotonic()
    tiny = None
    if "memory" in args.only:
        tiny, _ = ensure_logdir("1x4x1000")
    for size in args.sizes:
        logdir, manifest = ensure_logdir(size)
        # Inputs are named by their parameters (the folder name), never by a path of this machine.
        s = results["sizes"][size] = {"logdir": os.path.basename(logdir),
                                      "manifest": {k: v for k, v in manifest.items() if k != "series_last"}}
        small = manifest["runs"] <= args.python_backend_max_runs
        if "cli" in args.only:
            log(f"[cli] {size}")
            s["cli"] = bench_cli(logdir, manifest, args.reps, args.python_reps if small else 0)
        backends = ("python", "rust") if small else ("rust",)
        if "plugin" in args.only:
            log(f"[plugin] {size}")
            s["plugin"] = bench_plugin(logdir, args.reps, profile_dir, size, backends)
        if "memory" in args.only:
            log(f"[memory] {size}")
            s["memory"] = bench_memory(logdir, manifest, tiny, backends)
    if "engine" in args.only:
        log("[engine]")
        results["engine"] = bench_engine(args.engine_series, args.engine_points, args.engine_reps, profile_dir)
    if "concurrency" in args.only:
        logdir, manifest = ensure_logdir(args.concurrency_size)
        for lf in args.concurrency_load_fast:
            log(f"[concurrency] {args.concurrency_size}, --load_fast={lf}")
            c = bench_concurrency(logdir, manifest, args.concurrency_requests, lf)
            c.update(size=args.concurrency_size, requests=args.concurrency_requests)
            results["concurrency"].append(c)
    results["seconds"] = time.monotonic() - started
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(args.out_dir, f"results-{stamp}.json"), "w") as f:
        json.dump(results, f, indent=1)
    text = markdown(results)
    with open(os.path.join(args.out_dir, f"results-{stamp}.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    log(f"[done] {results['seconds']:.0f} s; results in {args.out_dir}/results-{stamp}.{{json,md}}")


if __name__ == "__main__":
    main()
