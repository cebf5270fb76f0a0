"""The Diagnosis tab at 10,000 runs, in a real TensorBoard, against TensorBoard listing every run.

Issue #13 ("Sweep scale"): first cards (worst runs first) within 2x of TensorBoard listing every
run, the complete report within 3x. Every repetition starts fresh `tensorboard --logdir`
processes (default backend, so the Rust data server) and measures, from the process start:

  (a) TensorBoard lists every run: `/data/runs` returns them all (the baseline);
  (b) the Diagnosis tab, in headless Chromium, shows its first card;
  (c) the tab shows the complete report (no pending note, every run group diagnosed);

with the tab opened two ways, each in its own TensorBoard: as soon as TensorBoard answers HTTP
("at start", what a user does) and once `/data/runs` lists every run ("once listed"). Then, on an
already-loaded TensorBoard (a third process):

  (d) one cold `report` request against TensorBoard's own requests for the same data: the run
      listing, the Scalars dashboard's tag listing, and `scalars_multirun` for every tag over
      every run.

Medians of --reps; the order of the three processes rotates between repetitions. Where the
time goes is printed too: the report requests the tab made (from the iframe's resource timing:
sent, first byte, last byte), the CPU seconds of the data server, of TensorBoard's Python process
(TensorBoard and this plugin) and of Chromium, and the browser's long tasks.

    python benchmarks/tab_scale.py                     # 10,000 copied runs x 2 tags x 50 points
    python benchmarks/tab_scale.py --logdir /tmp/lossdoctor_bench/r10000_t2_p200_v10_s0

The generated logdir (tests/test_browser_scale.py's: six event files written with TensorBoard's
EventFileWriter, copied into the run folders) is cached under lossdoctor_bench/ in the temp folder.
An existing --logdir is only read. Results: JSON beside the other benchmarks' results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_browser_scale import STATE_JS, write_logdir  # noqa: E402

BENCH_ROOT = Path(tempfile.gettempdir()) / "lossdoctor_bench"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
REPORT = "/data/plugin/lossdoctor/report"
TICK = os.sysconf("SC_CLK_TCK")

# Installed in every frame before its scripts: the main thread's long tasks (> 50 ms).
LONGTASKS_JS = """window.__ldLong = [];
try { new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__ldLong.push([e.startTime, e.duration]); })
        .observe({ type: 'longtask', buffered: true }); } catch (e) {}"""

TIMELINE_JS = """() => ({
  origin: performance.timeOrigin,
  reports: performance.getEntriesByType('resource').filter((e) => e.name.includes('/report'))
    .map((e) => [e.startTime, e.requestStart, e.responseStart, e.responseEnd, e.encodedBodySize || e.transferSize || 0]),
  long: window.__ldLong || [],
})"""

COMPLETE_JS = """n => { const note = document.querySelector('.ld-pending-note');
  const s = document.querySelector('.ld-summary');
  return note && note.hidden && s && s.textContent.replace(/,/g, '').includes(n + ' runs diagnosed') ? performance.now() : null; }"""


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# -- the logdir ----------------------------------------------------------------------------------


def logdir_counts(logdir: Path):
    """(run folders holding event files, run groups, scalar series) of an existing logdir; the
    groups and series come from benchmarks/make_logdir.py's manifest when there is one."""
    folders = sum(1 for _, _, files in os.walk(logdir) if any(f.startswith("events.out.tfevents") for f in files))
    manifest = logdir / "bench_manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        return folders, m["runs"], m["series"]
    return folders, folders, None


def generated_logdir(runs: int, points: int) -> Path:
    out = BENCH_ROOT / f"tab_scale_r{runs}_p{points}"
    done = out / "done.json"
    if done.is_file() and json.loads(done.read_text()) == {"runs": runs, "points": points}:
        return out / "logs"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t = time.monotonic()
    logs = write_logdir(out, runs=runs, points=points)
    done.write_text(json.dumps({"runs": runs, "points": points}))
    log(f"[logdir] {runs:,} runs x 2 tags x {points} points written in {time.monotonic() - t:.1f} s: {logs}")
    return logs


# -- processes -----------------------------------------------------------------------------------


def _children_table():
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                data = Path(f"/proc/{name}/stat").read_bytes()
            except OSError:
                continue
            rest = data[data.rfind(b")") + 2:].split()
            table.setdefault(int(rest[1]), []).append(int(name))
    return table


def _tree(pid, table):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(table.get(p, []))
    return out


def _cpu(pid):
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0.0
    rest = data[data.rfind(b")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def _is_pool_process(pid) -> bool:
    """The plugin's worker processes (plugin_pool: the fork server and the workers it forks)
    and multiprocessing's resource tracker."""
    try:
        return b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def cpu_split(tb_pid):
    """CPU seconds so far: {tensorboard: TensorBoard's Python process (with this plugin),
    data_server: its other children, workers: the plugin's worker processes, browser: Chromium
    and the Playwright driver (our other children)}. A worker that exited is no longer counted."""
    table = _children_table()
    tb = _tree(tb_pid, table)
    ours = set(_tree(os.getpid(), table)) - set(tb) - {os.getpid()}
    pool = [p for p in tb[1:] if _is_pool_process(p)]
    return {"tensorboard": _cpu(tb_pid), "data_server": sum(_cpu(p) for p in tb[1:] if p not in pool),
            "workers": sum(_cpu(p) for p in pool), "browser": sum(_cpu(p) for p in ours)}


def cpu_delta(a, b):
    return {k: b[k] - a[k] for k in a}


class TensorBoard:
    def __init__(self, logdir: Path, log_dir: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / f"tensorboard-{self.port}.log", "wb")
        self.start = time.monotonic()
        self.start_wall = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})

    def since(self, t=None):
        return (time.monotonic() if t is None else t) - self.start

    def get(self, path, timeout=600, data=None):
        req = urllib.request.Request(self.base + path, data=data)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()

    def poll(self, what, check, timeout=1800, interval=0.1):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tensorboard exited early (log: {self.log.name})")
            try:
                if check():
                    return time.monotonic()
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: still waiting after {timeout} s")
            time.sleep(interval)

    def answers(self):
        return self.poll("HTTP", lambda: self.get("/data/environment", timeout=10) is not None, interval=0.05)

    def listed(self, folders):
        return self.poll("listing", lambda: len(json.loads(self.get("/data/runs", timeout=60))) == folders)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- the measurements ----------------------------------------------------------------------------


def tab_session(browser, tb: TensorBoard, groups: int, opened_at: str):
    """Open the Diagnosis tab; times (from the TensorBoard process start) of its first card and of
    the complete report, the report requests it made, CPU split, long tasks."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(LONGTASKS_JS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        cpu0 = cpu_split(tb.proc.pid)
        opened = time.monotonic()
        page.goto(tb.base + "/#lossdoctor", wait_until="domcontentloaded")
        frame = None
        while frame is None:
            frame = next((f for f in page.frames if "plugin_entry.html" in f.url and "lossdoctor" in f.url), None)
            if frame is None:
                if time.monotonic() - opened > 300:
                    raise RuntimeError("the Diagnosis tab's iframe never loaded")
                page.wait_for_timeout(50)
        first = frame.wait_for_function(STATE_JS, polling="raf", timeout=1_800_000).json_value()
        first_card = time.monotonic()
        cpu1 = cpu_split(tb.proc.pid)
        frame.wait_for_function(COMPLETE_JS, arg=groups, polling=100, timeout=1_800_000)
        complete = time.monotonic()
        cpu2 = cpu_split(tb.proc.pid)
        timeline = frame.evaluate(TIMELINE_JS)
        shown = frame.evaluate(STATE_JS)
    finally:
        context.close()
    # the iframe's clock (ms since its time origin) on the TensorBoard process's clock (s since start)
    shift = (timeline["origin"] / 1000.0 - tb.start_wall)
    requests = [{"sent": shift + s / 1000, "first_byte": shift + rs / 1000, "done": shift + re / 1000,
                 "server_wait": (rs - rq) / 1000, "bytes": size}
                for s, rq, rs, re, size in timeline["reports"]]
    long_after_last = sum(d for st, d in timeline["long"] if requests and shift + st / 1000 >= requests[-1]["done"] - 0.001)
    first_statuses = [sev for _, sev in first["cards"]]
    return {
        "opened_at": opened_at, "opened": tb.since(opened), "first_card": tb.since(first_card),
        "complete": tb.since(complete), "first_partial": first["pending"], "first_summary": first["summary"],
        "first_card_status": first_statuses[0] if first_statuses else None,
        "final_first_status": shown["cards"][0][1], "requests": requests,
        "long_tasks_s": sum(d for _, d in timeline["long"]) / 1000.0, "long_tasks_after_last_report_s": long_after_last / 1000.0,
        "cpu_to_first_card": cpu_delta(cpu0, cpu1), "cpu_first_to_complete": cpu_delta(cpu1, cpu2),
        "page_errors": errors,
    }


def measure_tab(browser, logdir, folders, groups, at: str, log_dir):
    tb = TensorBoard(logdir, log_dir)
    try:
        out = {}
        if at == "start":
            out["answers"] = tb.since(tb.answers())
        else:
            cpu0 = cpu_split(tb.proc.pid)
            out["listed"] = tb.since(tb.listed(folders))
            out["cpu_listing"] = cpu_delta(cpu0, cpu_split(tb.proc.pid))
        out.update(tab_session(browser, tb, groups, at))
        return out
    finally:
        tb.close()


def timed(fn, n=1):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure_requests(logdir, folders, series, log_dir):
    """(a) on its own, then (d) on the loaded TensorBoard."""
    tb = TensorBoard(logdir, log_dir)
    try:
        cpu0 = cpu_split(tb.proc.pid)
        listed = tb.since(tb.listed(folders))
        cpu_listing = cpu_delta(cpu0, cpu_split(tb.proc.pid))

        def tag_count():
            tags = json.loads(tb.get("/data/plugin/scalars/tags"))
            return sum(len(t) for t in tags.values())

        if series is not None:
            tb.poll("every series loaded", lambda: tag_count() == series, interval=0.5)
        else:  # loaded: the count of series holds for 10 s
            last, since = -1, time.monotonic()
            while time.monotonic() - since < 10:
                n = tag_count()
                if n != last:
                    last, since = n, time.monotonic()
                time.sleep(1)
        loaded = tb.since()
        tags = json.loads(tb.get("/data/plugin/scalars/tags"))
        by_tag = {}
        for run, run_tags in tags.items():
            for tag in run_tags:
                by_tag.setdefault(tag, []).append(run)
        out = {"listed": listed, "cpu_listing": cpu_listing, "loaded": loaded,
               "runs_request": timed(lambda: tb.get("/data/runs"), 3),
               "tags_request": timed(lambda: tb.get("/data/plugin/scalars/tags"), 3)}
        multirun = {}
        for tag, runs in sorted(by_tag.items()):
            body = urllib.parse.urlencode([("tag", tag)] + [("runs", r) for r in runs]).encode()
            multirun[tag] = timed(lambda: tb.get("/data/plugin/scalars/scalars_multirun", data=body))
        out["multirun"] = multirun
        out["multirun_all"] = sum(multirun.values())
        out["multirun_max"] = max(multirun.values())
        cpu0 = cpu_split(tb.proc.pid)
        out["report_cold"] = timed(lambda: tb.get(REPORT))
        out["cpu_report_cold"] = cpu_delta(cpu0, cpu_split(tb.proc.pid))
        out["report_warm"] = timed(lambda: tb.get(REPORT), 3)
        out["report_bytes"] = len(tb.get(REPORT))
        return out
    finally:
        tb.close()


# -- output --------------------------------------------------------------------------------------


def yes(ok):
    return "**yes**" if ok else "**no**"


def markdown(res) -> str:
    reps = res["reps"]
    a = med([r["requests"]["listed"] for r in reps] + [r["listed"]["listed"] for r in reps])
    lines = [
        f"{res['runs']:,} run groups ({res['folders']:,} run folders) in `{res['logdir']}`; "
        f"medians of {len(reps)}; load average {res['load_before']} before, {res['load_after']} after "
        f"({res['cores']} cores); LOSSDOCTOR_WORKERS={res.get('LOSSDOCTOR_WORKERS') or 'unset'}.",
        "",
        "| measurement (from `tensorboard` process start) | median | ÷ (a) | target | met |",
        "|---|---|---|---|---|",
        f"| (a) TensorBoard lists every run (`/data/runs`) | {a:.1f} s | 1.00x | | |",
    ]
    for at, label in (("start", "tab opened as soon as TensorBoard answers"), ("listed", "tab opened once every run is listed")):
        b = med([r[at]["first_card"] for r in reps])
        c = med([r[at]["complete"] for r in reps])
        lines.append(f"| (b) first card, {label} | {b:.1f} s | {b / a:.2f}x | <= 2x | {yes(b <= 2 * a)} |")
        lines.append(f"| (c) complete report, {label} | {c:.1f} s | {c / a:.2f}x | <= 3x | {yes(c <= 3 * a)} |")
    cold = med([r["requests"]["report_cold"] for r in reps])
    warm = med([r["requests"]["report_warm"] for r in reps])
    runs_req = med([r["requests"]["runs_request"] for r in reps])
    tags_req = med([r["requests"]["tags_request"] for r in reps])
    mr_all = med([r["requests"]["multirun_all"] for r in reps])
    mr_max = med([r["requests"]["multirun_max"] for r in reps])
    ntags = len(reps[0]["requests"]["multirun"])
    lines += [
        "",
        "| on a loaded TensorBoard (one request) | median | cold report ÷ it |",
        "|---|---|---|",
        f"| (d) `report`, cold (every run group read and diagnosed) | {cold:.2f} s | 1.00x |",
        f"| `report`, warm (cached) | {warm:.3f} s | {cold / warm:.0f}x |",
        f"| `/data/runs` | {runs_req:.3f} s | {cold / runs_req:.0f}x |",
        f"| `/data/plugin/scalars/tags` | {tags_req:.3f} s | {cold / tags_req:.0f}x |",
        f"| `scalars_multirun`, one tag over every run (the largest) | {mr_max:.2f} s | {cold / mr_max:.1f}x |",
        f"| `scalars_multirun`, all {ntags} tags over every run | {mr_all:.2f} s | {cold / mr_all:.1f}x |",
    ]
    return "\n".join(lines)


def timeline_text(r) -> str:
    """One tab session, step by step."""
    lines = [f"tab opened at {r['opened']:.1f} s ({'TensorBoard answered' if r['opened_at'] == 'start' else 'every run listed'}"
             f" at {r.get('answers', r.get('listed', 0)):.1f} s); first card {r['first_card']:.1f} s "
             f"(first answer {'partial' if r['first_partial'] else 'complete'}: {r['first_summary'].strip()[:80]!r}), "
             f"complete {r['complete']:.1f} s"]
    for q in r["requests"]:
        lines.append(f"  report request sent {q['sent']:6.1f} s, server {q['server_wait']:5.2f} s, "
                     f"done {q['done']:6.1f} s, {q['bytes'] / 1e6:5.2f} MB")
    c1, c2 = r["cpu_to_first_card"], r["cpu_first_to_complete"]
    lines.append("  CPU s to first card: " + ", ".join(f"{k} {v:.1f}" for k, v in c1.items())
                 + "; first card to complete: " + ", ".join(f"{k} {v:.1f}" for k, v in c2.items()))
    lines.append(f"  browser long tasks {r['long_tasks_s']:.2f} s in all, {r['long_tasks_after_last_report_s']:.2f} s after the last report arrived")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000, help="runs of the generated logdir (default 10,000)")
    ap.add_argument("--points", type=int, default=50, help="points per tag of the generated logdir (default 50)")
    ap.add_argument("--logdir", type=Path, help="an existing logdir instead (only read)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out-dir", type=Path, default=BENCH_ROOT / "results")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    logdir = args.logdir.resolve() if args.logdir else generated_logdir(args.runs, args.points)
    folders, groups, series = logdir_counts(logdir)
    if not args.logdir:
        series = 2 * folders
    log_dir = Path(tempfile.mkdtemp(prefix="tab_scale_"))  # TensorBoard's logs, never in the logdir
    res = {"logdir": str(logdir), "folders": folders, "runs": groups, "series": series, "cores": os.cpu_count(),
           "machine": platform.platform(), "load_before": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "reps": [],
           "LOSSDOCTOR_WORKERS": os.environ.get("LOSSDOCTOR_WORKERS")}
    log(f"[tab_scale] {logdir}: {folders:,} run folders, {groups:,} run groups; load {res['load_before']}")
    order = ["requests", "start", "listed"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for rep in range(args.reps):
                one = {}
                for what in order[rep % 3:] + order[:rep % 3]:
                    if what == "requests":
                        one[what] = r = measure_requests(logdir, folders, series, log_dir)
                        log(f"[rep {rep + 1}] listed {r['listed']:.1f} s, loaded {r['loaded']:.1f} s; report cold "
                            f"{r['report_cold']:.2f} s, warm {r['report_warm']:.3f} s; /data/runs {r['runs_request']:.3f} s; "
                            f"multirun all tags {r['multirun_all']:.2f} s; CPU to list {r['cpu_listing']}")
                    else:
                        one[what] = r = measure_tab(browser, logdir, folders, groups, what, log_dir)
                        log(f"[rep {rep + 1}] " + timeline_text(r))
                        if r["page_errors"]:
                            log(f"  page errors: {r['page_errors'][:3]}")
                one["load"] = os.getloadavg()
                res["reps"].append(one)
        finally:
            browser.close()
    res["load_after"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"tab_scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(res, indent=1))
    print(markdown(res))
    log(f"[tab_scale] results: {out}")
    shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
