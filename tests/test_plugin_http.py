"""The plugin over HTTP, on real event files, with TensorBoard's own app and both data providers.

`--load_fast=false` builds the Python multiplexer; `--load_fast=true` spawns the Rust data server.
The data provider is wrapped in a thin counting proxy (instrumentation of the real provider) to
check that the cache avoids re-reading.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import json
import os
import re
import threading
import time

import pytest
from werkzeug.test import Client

from conftest import SimpleValueWriter, decaying, wait_until, write_tf_scalars
from tb_lossdoctor import plugin as plugin_mod
from tb_lossdoctor import report as report_mod

PROVIDERS = ["python", "rust"]
SEVERITIES = {"error", "warning", "info"}
STATUSES = {"ok", "warning", "error"}
BASE = "/data/plugin/lossdoctor"


# -- building the real app ----------------------------------------------------------------------


class CountingProvider:
    """Forwards every call to the real provider and counts it (and records read filters)."""

    def __init__(self, inner):
        self._inner = inner
        self.calls = collections.Counter()
        self.read_filters = []
        self.experiment_ids = []
        self.fail = False
        self.gate = None  # a threading.Event that read_scalars waits for, when set by a test
        self.reading = threading.Event()  # set when a read_scalars call starts
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def stuck_reads(self):
        """Inside the block every read_scalars call waits (a build in progress stays stuck);
        leaving it lets them go."""
        self.reading.clear()
        self.gate = threading.Event()
        try:
            yield
        finally:
            self.gate.set()
            self.gate = None

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self._lock:
                self.calls[name] += 1
                if name == "read_scalars":
                    self.read_filters.append(kwargs.get("run_tag_filter"))
                if "experiment_id" in kwargs:
                    self.experiment_ids.append(kwargs["experiment_id"])
            if name == "read_scalars":
                self.reading.set()
                if self.gate is not None:
                    assert self.gate.wait(30), "the test never opened the gate"
            return attr(*args, **kwargs)

        return call


class TB:
    """A TensorBoard WSGI app over a logdir, as `tensorboard --logdir ...` builds it."""

    def __init__(self, logdir, provider, *extra_args):
        from tensorboard import default, program
        from tensorboard.backend import application

        self.kind = provider
        tb = program.TensorBoard(plugins=default.get_plugins())
        argv = ["", "--logdir", str(logdir), *extra_args]
        if provider == "python":
            argv += ["--load_fast", "false", "--reload_task", "blocking", "--reload_interval", "0"]
        else:
            argv += ["--load_fast", "true", "--reload_interval", "1"]
        tb.configure(argv)
        self.flags = tb.flags
        data_provider, self.multiplexer = tb._make_data_provider()
        self.ingester = tb._ingester
        self.provider = CountingProvider(data_provider)
        self.app = application.TensorBoardWSGIApp(
            tb.flags, tb.plugin_loaders, self.provider, tb.assets_zip_provider, self.multiplexer
        )
        self.client = Client(self.app)
        self.prefix = tb.flags.path_prefix or ""
        self.plugin = next(p for p in self.app._plugins if p.plugin_name == "lossdoctor")

    def wait_for_file_scan(self):
        """The logdir listing runs off the request path: wait for its first pass."""
        self.plugin._file_scan.problems()  # starts the scanning thread
        assert wait_until(lambda: self.plugin._file_scan.scans > 0, timeout=20)

    def get(self, path, **kw):
        return self.client.get(self.prefix + path, **kw)

    def report(self, query="", path=BASE + "/report"):
        resp = self.get(path + (("?" + query) if query else ""))
        return resp

    def reload(self, expect=None):
        """Pick up new data: synchronously for the multiplexer, by polling for the data server."""
        if self.multiplexer is not None:
            self.multiplexer.AddRunsFromDirectory(self.flags.logdir)
            self.multiplexer.Reload()
        if expect is not None:
            assert wait_until(lambda: expect(self.listing()), timeout=20), "new data never appeared"

    def listing(self):
        from tensorboard import context

        return self.provider._inner.list_scalars(
            context.RequestContext(), experiment_id="", plugin_name="scalars"
        )

    def wait_for_runs(self, runs):
        runs = set(runs)
        ok = wait_until(lambda: runs <= set(self.listing()), timeout=30)
        assert ok, "runs %s never loaded (have %s)" % (sorted(runs), sorted(self.listing()))

    def listing_key(self):
        return {(run, tag): (ts.max_step, ts.max_wall_time) for run, tags in self.listing().items() for tag, ts in tags.items()}

    def wait_for_listing(self, expected):
        """Wait until this provider holds exactly the (run, tag) -> last point of `expected`."""
        ok = wait_until(lambda: self.listing_key() == expected, timeout=30)
        assert ok, "provider never caught up with %d series" % len(expected)

    def close(self):
        handle = getattr(self.ingester, "_stdin_handle", None)
        if handle is not None:  # the data server runs with --die-after-stdin
            handle.close()


# -- logs ------------------------------------------------------------------------------------


MAIN_RUNS = ["kerasish/train", "kerasish/validation", "torchish", "exploded", "misc"]


@pytest.fixture(scope="module")
def main_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("main")
    n = 60
    train = decaying(n, 2.0, 0.05, noise=0.01, seed=1)
    val = [min(v, 0.6) + max(0, i - 20) * 0.02 for i, v in enumerate(decaying(n, 2.1, 0.4, noise=0.01, seed=2))]
    write_tf_scalars(root / "kerasish" / "train", "epoch_loss", train)
    write_tf_scalars(root / "kerasish" / "validation", "epoch_loss", val)
    w = SimpleValueWriter(root / "torchish")
    w.add("loss", decaying(300, 3.0, 0.3, noise=0.02, seed=3))
    w.add("val_loss", decaying(30, 3.1, 0.35, seed=4), start_step=0, every=10)
    w.close()
    w = SimpleValueWriter(root / "exploded")
    w.add("loss", decaying(80, 2.0, 0.5, seed=5) + [50.0, 1e4, float("nan"), float("nan"), float("nan")])
    w.close()
    w = SimpleValueWriter(root / "misc")  # no loss at all: nothing to diagnose
    w.add("learning_rate", [0.1] * 20)
    w.close()
    return root


@pytest.fixture(scope="module")
def apps(main_logdir):
    made = {}
    for kind in PROVIDERS:
        made[kind] = TB(main_logdir, kind)
    made["python"].wait_for_runs(MAIN_RUNS)
    made["rust"].wait_for_listing(made["python"].listing_key())
    yield made
    for tb in made.values():
        tb.close()


def fresh(tb):
    """Forget cached diagnoses so a test sees the plugin's first-request behaviour."""
    if tb.plugin._cache is not None:
        tb.plugin._cache.clear()
    tb.provider.calls.clear()
    tb.provider.read_filters.clear()


# -- report checks ----------------------------------------------------------------------------


def _no_nan(token):
    raise AssertionError("report holds a bare %s" % token)


def parse_report(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    rep = json.loads(resp.get_data(as_text=True), parse_constant=_no_nan)
    check_report(rep)
    return rep


def check_report(rep):
    assert rep["version"] == report_mod.REPORT_VERSION
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rep["generated_at"])
    assert isinstance(rep["problems"], list)
    assert isinstance(rep["sampled"], bool)
    assert ("sampling" in rep) == rep["sampled"]
    runs = rep["runs"]
    assert runs == report_mod.order_runs(runs), "runs are not ordered worst first, then by name"
    assert len({r["run"] for r in runs}) == len(runs)
    for r in runs:
        assert r["status"] in STATUSES
        assert r["status"] == report_mod.group_status(r["findings"])
        assert r["series"], r
        for s in r["series"]:
            assert {"run", "tag", "role", "metric", "points"} <= set(s)
            assert isinstance(s["points"], int) and s["points"] >= 0
        verdicts = [f["code"] for f in r["findings"] if f["code"] not in ("nan", "blowup", "spikes")]
        died = any(f["code"] in ("nan", "blowup") for f in r["findings"])
        assert len(verdicts) == (0 if died else 1) and r["verdict"] == (verdicts[0] if verdicts else None), r
        for f in r["findings"]:
            assert f["severity"] in SEVERITIES
            assert isinstance(f["code"], str) and f["code"]
            assert {"title", "summary", "metric", "tags", "step", "step_range", "evidence", "advice", "confidence"} <= set(f)


def without_time(rep):
    rep = dict(rep)
    rep.pop("generated_at")
    return rep


def series_runs(rep):
    return sorted((s["run"], s["tag"]) for r in rep["runs"] for s in r["series"])


# -- listing and static files -----------------------------------------------------------------


@pytest.mark.parametrize("kind", PROVIDERS)
def test_plugin_listed_active_with_diagnosis_tab(apps, kind):
    tb = apps[kind]
    resp = tb.get("/data/plugins_listing")
    assert resp.status_code == 200
    listing = json.loads(resp.get_data(as_text=True))
    entry = listing["lossdoctor"]  # found through the tensorboard_plugins entry point
    assert entry["enabled"] is True
    assert entry["tab_name"] == "Diagnosis"
    assert entry["loading_mechanism"]["module_path"] == tb.prefix + BASE + "/index.js"


def test_module_import_is_light():
    """An import error in the plugin module would take TensorBoard down: keep it to TB's core."""
    import subprocess
    import sys

    code = (
        "import sys, tb_lossdoctor.plugin as p;"
        "print(sorted(m for m in ('numpy', 'tensorflow', 'tb_lossdoctor.engine', 'tb_lossdoctor.report_cache')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_is_active_is_cheap_and_declares_scalars(apps):
    plugin = apps["python"].plugin
    calls = sum(apps["python"].provider.calls.values())
    assert plugin.data_plugin_names() == ("scalars",)
    plugin.is_active()
    assert sum(apps["python"].provider.calls.values()) == calls


@pytest.fixture
def static_dir(tmp_path, apps):
    """A stand-in bundle folder (the real one is being written concurrently)."""
    d = tmp_path / "static"
    (d / "assets").mkdir(parents=True)
    (d / "index.js").write_text("export async function render() {}\n")
    (d / "assets" / "style.css").write_text("body{}\n")
    (d / "assets" / "chunk.mjs").write_text("export const x = 1;\n")
    (d / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (d / "data.bin").write_bytes(b"\x00\x01")
    (d / ".secret").write_text("hidden")
    (tmp_path / "outside.js").write_text("outside")
    (tmp_path / "static_evil").mkdir()
    (tmp_path / "static_evil" / "x.js").write_text("sibling")
    (d / "link.js").symlink_to(tmp_path / "outside.js")
    saved = {k: tb.plugin._static_dir for k, tb in apps.items()}
    for tb in apps.values():
        tb.plugin._static_dir = str(d)
    yield d
    for k, tb in apps.items():
        tb.plugin._static_dir = saved[k]


@pytest.mark.parametrize("kind", PROVIDERS)
def test_static_files_served_with_content_types(apps, static_dir, kind):
    tb = apps[kind]
    cases = {
        "/index.js": "text/javascript",
        "/assets/style.css": "text/css",
        "/assets/chunk.mjs": "text/javascript",
        "/logo.svg": "image/svg+xml",
        "/data.bin": "application/octet-stream",
    }
    for path, mimetype in cases.items():
        resp = tb.get(BASE + path)
        assert resp.status_code == 200, path
        assert resp.mimetype == mimetype, path
        assert resp.headers.get("X-Content-Type-Options") == "nosniff"
        rel = path.lstrip("/")
        assert resp.get_data() == (static_dir / rel).read_bytes()


def test_real_bundle_index_js_if_present(apps):
    index = os.path.join(plugin_mod.STATIC_DIR, "index.js")
    if not os.path.isfile(index):
        pytest.skip("the frontend bundle has not been written yet")
    for tb in apps.values():
        resp = tb.get(BASE + "/index.js")
        assert resp.status_code == 200
        assert resp.mimetype == "text/javascript"
        with open(index, "rb") as f:
            assert resp.get_data() == f.read()


TRAVERSALS = [
    "/../outside.js",
    "/..%2foutside.js",
    "/%2e%2e/outside.js",
    "/%2e%2e%2foutside.js",
    "/assets/..%2f..%2foutside.js",
    "/assets/%2e%2e/%2e%2e/outside.js",
    "/..%5coutside.js",
    "/assets%5c..%5c..%5coutside.js",
    "/%2fetc%2fpasswd",
    "//etc/passwd",
    "/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/..%2fstatic_evil%2fx.js",
    "/.secret",
    "/link.js",
    "/assets",
    "/assets/",
    "/",
    "/missing.js",
    "/index.js%00.png",
    "/C:%5cwindows%5cwin.ini",
]


@pytest.mark.parametrize("kind", PROVIDERS)
def test_traversal_attempts_are_404(apps, static_dir, kind):
    tb = apps[kind]
    for path in TRAVERSALS:
        resp = tb.get(BASE + path)
        assert resp.status_code == 404, path
        assert b"outside" not in resp.get_data() and b"sibling" not in resp.get_data() and b"root:" not in resp.get_data()


# -- the report -------------------------------------------------------------------------------


def test_report_valid_and_identical_on_both_providers(apps):
    reports = {}
    for kind, tb in apps.items():
        fresh(tb)
        reports[kind] = parse_report(tb.report())
    py, rs = reports["python"], reports["rust"]
    assert without_time(py) == without_time(rs)
    assert series_runs(py) == sorted(
        [
            ("exploded", "loss"),
            ("kerasish/train", "epoch_loss"),
            ("kerasish/validation", "epoch_loss"),
            ("torchish", "loss"),
            ("torchish", "val_loss"),
        ]
    )
    groups = {r["run"]: r for r in py["runs"]}
    assert set(groups) == {"kerasish", "torchish", "exploded"}  # Keras train/validation: one group
    points = {(s["run"], s["tag"]): s["points"] for r in py["runs"] for s in r["series"]}
    assert points[("torchish", "loss")] == 300 and points[("torchish", "val_loss")] == 30
    assert points[("kerasish/train", "epoch_loss")] == 60
    assert py["sampled"] is False and "sampling" not in py


def test_the_one_group_fallback_gives_the_same_report(apps, monkeypatch):
    """When the run grouping and the engine disagree (two groups holding runs of one name,
    `assemble` gives None), the plugin diagnoses the experiment as one group: still the report
    one engine call gives."""
    from tb_lossdoctor import report_assembly

    tb = apps["rust"]
    fresh(tb)
    normal = parse_report(tb.report())
    fresh(tb)
    monkeypatch.setattr(report_assembly, "assemble", lambda *args, **kwargs: None)
    fallback = parse_report(tb.report())
    assert without_time(fallback) == without_time(normal) and normal["runs"]


@pytest.mark.parametrize("kind", PROVIDERS)
def test_merged_per_group_report_equals_one_engine_call(apps, kind):
    """Diagnosing group by group and merging gives what one engine call on everything gives."""
    from tensorboard import context

    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.readers.provider import read_series

    tb = apps[kind]
    fresh(tb)
    rep = parse_report(tb.report())
    series, problems = read_series(tb.provider._inner, context.RequestContext(), "", sample_limit=1000)
    direct = json.loads(report_mod.dumps(diagnose(series, problems=problems)))
    assert without_time(rep) == without_time(direct)
    narrowed = [parse_report(tb.report("run=" + g)) for g in ("exploded", "kerasish", "misc", "torchish")]
    assert sorted(r["run"] for n in narrowed for r in n["runs"]) == sorted(r["run"] for r in rep["runs"])


def test_report_worst_first_with_real_verdicts(apps):
    rep = parse_report(apps["python"].report())
    exploded = next(r for r in rep["runs"] if r["run"] == "exploded")
    assert exploded["status"] == "error"
    assert "nan" in {f["code"] for f in exploded["findings"]}
    assert rep["runs"][0]["status"] == "error"


@pytest.mark.parametrize("kind", PROVIDERS)
def test_run_parameter_narrows_to_one_group(apps, kind):
    tb = apps[kind]
    full = parse_report(tb.report())
    for group in [r["run"] for r in full["runs"]]:
        one = parse_report(tb.report("run=" + group))
        assert [r["run"] for r in one["runs"]] == [group]
        assert one["runs"][0] == next(r for r in full["runs"] if r["run"] == group)
    resp = tb.report("run=no-such-group")
    assert resp.status_code == 404
    assert resp.mimetype == "application/json"
    assert "no-such-group" in json.loads(resp.get_data(as_text=True))["error"]


@pytest.mark.parametrize(
    "query",
    ["run=", "run=a&run=b", "bogus=1", "run=torchish&extra=2", "run=%00", "run=" + "x" * 5000, "format=yaml"],
)
def test_bad_parameters_are_400_json(apps, query):
    resp = apps["python"].report(query)
    assert resp.status_code == 400, query
    assert resp.mimetype == "application/json"
    assert json.loads(resp.get_data(as_text=True))["error"]


def test_path_prefix_and_experiment_urls(main_logdir, apps):
    tb = TB(main_logdir, "python", "--path_prefix", "/some/prefix")
    try:
        assert tb.prefix == "/some/prefix"
        direct = parse_report(apps["python"].report())
        prefixed = parse_report(tb.report())
        assert without_time(prefixed) == without_time(direct)
        assert tb.client.get(BASE + "/report").status_code == 404  # only under the prefix
        listing = json.loads(tb.get("/data/plugins_listing").get_data(as_text=True))
        assert listing["lossdoctor"]["enabled"] is True
        # /experiment/<id>/ URLs (with and without the prefix): the id reaches the provider.
        for t, eid in ((tb, "exp123"), (apps["rust"], "abc")):
            t.provider.experiment_ids.clear()
            rep = parse_report(t.get("/experiment/%s%s/report?run=torchish" % (eid, BASE)))
            assert [r["run"] for r in rep["runs"]] == ["torchish"]
            assert set(t.provider.experiment_ids) == {eid}
            js = t.get("/experiment/%s%s/nope.js" % (eid, BASE))
            assert js.status_code == 404
            if os.path.isfile(os.path.join(plugin_mod.STATIC_DIR, "index.js")):
                js = t.get("/experiment/%s%s/index.js" % (eid, BASE))
                assert js.status_code == 200 and js.mimetype == "text/javascript"
    finally:
        tb.close()


@pytest.mark.parametrize("kind", PROVIDERS)
def test_second_request_reads_nothing(apps, kind):
    tb = apps[kind]
    fresh(tb)
    first = tb.report()
    assert tb.provider.calls["read_scalars"] == 1  # one call for every series, not one per tag
    diagnosed = tb.plugin._cache.diagnosed_groups
    second = tb.report()
    narrowed = tb.report("run=torchish")
    assert tb.provider.calls["read_scalars"] == 1
    assert tb.plugin._cache.diagnosed_groups == diagnosed  # nothing recomputed
    assert second.get_data() == first.get_data()
    parse_report(narrowed)


@pytest.mark.parametrize("kind", PROVIDERS)
def test_concurrent_requests_identical(apps, kind):
    tb = apps[kind]
    fresh(tb)
    results, errors = [], []
    barrier = threading.Barrier(50)

    def worker():
        try:
            client = Client(tb.app)
            barrier.wait(timeout=10)
            resp = client.get(BASE + "/report")
            results.append((resp.status_code, resp.get_data()))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(results) == 50
    assert {code for code, _ in results} == {200}
    assert len({body for _, body in results}) == 1
    assert tb.provider.calls["read_scalars"] == 1


@pytest.mark.parametrize("kind", PROVIDERS)
def test_new_data_invalidates_only_the_affected_group(tmp_path, kind):
    a = SimpleValueWriter(tmp_path / "alpha")
    a.add("loss", decaying(50, 2.0, 0.5, seed=7))
    write_tf_scalars(tmp_path / "beta" / "train", "epoch_loss", decaying(20, 1.0, 0.2, seed=8))
    write_tf_scalars(tmp_path / "beta" / "validation", "epoch_loss", decaying(20, 1.1, 0.3, seed=9))
    tb = TB(tmp_path, kind)
    try:
        tb.wait_for_runs(["alpha", "beta/train", "beta/validation"])
        first = parse_report(tb.report())
        assert tb.provider.calls["read_scalars"] == 1
        beta_before = next(r for r in first["runs"] if r["run"] == "beta")

        a.add("loss", decaying(30, 0.5, 0.4, seed=10), start_step=50)  # appended to the same file
        tb.reload(expect=lambda lst: lst.get("alpha", {}).get("loss") and lst["alpha"]["loss"].max_step == 79)
        second = parse_report(tb.report())
        assert tb.provider.calls["read_scalars"] == 2
        rtf = tb.provider.read_filters[-1]
        assert set(rtf.runs) == {"alpha"} and set(rtf.tags) == {"loss"}
        alpha = next(r for r in second["runs"] if r["run"] == "alpha")
        assert {s["tag"]: s["points"] for s in alpha["series"]} == {"loss": 80}
        assert next(r for r in second["runs"] if r["run"] == "beta") == beta_before

        parse_report(tb.report())
        assert tb.provider.calls["read_scalars"] == 2
    finally:
        a.close()
        tb.close()


# -- one run changed: the fast path against a cold report ---------------------------------------


def _append_point(run_dir, tag, step, value):
    """A writer adds one point to a run (in a new event file, as a resumed run does)."""
    import time

    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    before = sorted(os.listdir(run_dir))
    writer = EventFileWriter(str(run_dir), filename_suffix=".more%d" % step)
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))])
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()
    # The multiplexer reads a run's event files in name order and skips a new one that sorts
    # before the file it is on: within the same second, the writer's counter in the name
    # (".10" after ".6") can do that. A resumed run's file comes later: name it so.
    (new,) = set(os.listdir(run_dir)) - set(before)
    if before and new < before[-1]:
        os.rename(os.path.join(run_dir, new), os.path.join(run_dir, before[-1] + ".more%d" % step))


def _no_time(body):
    return re.sub(rb'"generated_at": "[^"]*"', b'"generated_at": ""', body, count=1)


def _changes_give_the_cold_report(tb, changes, monkeypatch):
    """For each change (run, tag, [(step, value)]): after the writer's points are listed, the
    plugin's report diagnoses that run's group only, patches the previous body's assembly (no
    assembly from scratch), and equals, byte for byte but `generated_at`, a cold report of the
    same data (the cache emptied, every group diagnosed again)."""
    from tb_lossdoctor import report_assembly, report_cache

    builds = []
    real_build = report_assembly.Assembly.build.__func__

    def counting_build(cls, *args, **kwargs):
        builds.append(1)
        return real_build(cls, *args, **kwargs)

    monkeypatch.setattr(report_assembly.Assembly, "build", classmethod(counting_build))
    if tb.kind == "rust":  # TensorBoard's own provider: the plugin lists straight from the data server
        tb.plugin._data_provider = tb.provider._inner
    assert report_cache.provider_reader.columnar_stub(tb.plugin._data_provider) is not None or tb.kind == "python"
    before = parse_report(tb.report())
    seen = []
    for run, tag, points in changes:
        for step, value in points:
            _append_point(tb.flags.logdir + "/" + run, tag, step, value)
        last = points[-1][0]
        tb.reload(expect=lambda lst: run in lst and tag in lst[run] and lst[run][tag].max_step == last)
        cache = tb.plugin._cache
        diagnosed, reads, built = cache.diagnosed_groups, cache.reads, len(builds)
        changed = tb.report()
        rep = parse_report(changed)
        assert cache.diagnosed_groups - diagnosed == 1 and cache.reads - reads == 1
        assert len(builds) == built, "the body was assembled from scratch, not patched"
        fresh(tb)
        cold = tb.report()
        assert cache.diagnosed_groups - diagnosed > len(rep["runs"])  # every group again
        assert _no_time(changed.get_data()) == _no_time(cold.get_data())
        seen.append(rep)
    return before, seen


@pytest.mark.parametrize("kind", PROVIDERS)
def test_one_changed_run_gives_the_cold_report(tmp_path, kind, monkeypatch):
    """Runs named by their settings (a sweep), a Keras train/validation pair and a run with no
    loss: new points in one run, then a NaN that moves another run to the top."""
    settings = [(0.1, 32), (0.01, 32), (0.001, 64), (0.1, 64)]
    for i, (lr, bs) in enumerate(settings):
        w = SimpleValueWriter(tmp_path / f"sweep/lr={lr}_bs={bs}")
        w.add("loss", decaying(60, 2.0, 0.2 + 0.1 * i, noise=0.01, seed=20 + i))
        w.add("val_loss", decaying(6, 2.1, 0.3 + 0.1 * i, seed=30 + i), every=10)
        w.close()
    write_tf_scalars(tmp_path / "keras" / "train", "epoch_loss", decaying(20, 1.0, 0.2, seed=8))
    write_tf_scalars(tmp_path / "keras" / "validation", "epoch_loss", decaying(20, 1.1, 0.3, seed=9))
    SimpleValueWriter(tmp_path / "misc").add("learning_rate", [0.1] * 20).close()
    tb = TB(tmp_path, kind)
    try:
        tb.wait_for_runs(["sweep/lr=0.1_bs=32", "sweep/lr=0.1_bs=64", "keras/train", "keras/validation", "misc"])
        before, (grown, died) = _changes_give_the_cold_report(tb, [
            ("sweep/lr=0.01_bs=32", "loss", [(60 + k, 0.35) for k in range(5)]),
            ("sweep/lr=0.1_bs=64", "loss", [(60, float("nan")), (61, float("nan")), (62, float("nan"))]),
        ], monkeypatch)
        assert before["sweep"] is not None and died["sweep"] is not None
        points = {s["tag"]: s["points"] for r in grown["runs"] if r["run"] == "sweep/lr=0.01_bs=32" for s in r["series"]}
        assert points == {"loss": 65, "val_loss": 6}
        assert died["runs"][0]["run"] == "sweep/lr=0.1_bs=64" and died["runs"][0]["status"] == "error"
        assert before["runs"][0]["run"] != "sweep/lr=0.1_bs=64"
    finally:
        tb.close()


@pytest.mark.parametrize("kind", PROVIDERS)
def test_one_changed_run_of_a_sweep_with_hparams_records_gives_the_cold_report(tmp_path, kind, monkeypatch):
    """The demo sweeps (HParams records, PyTorch's `RUN/<time>` record folders): a new best
    validation loss in one run changes the sweep's table; a NaN in another changes its outcome."""
    import shutil
    from pathlib import Path

    from conftest import _has_event_files

    sweeps = Path(__file__).resolve().parents[1] / "demo" / "sweeps"
    if not _has_event_files(sweeps):
        pytest.skip("demo/sweeps has not been generated")
    shutil.copytree(sweeps, tmp_path / "sweeps")
    tb = TB(tmp_path / "sweeps", kind)
    try:
        torch_run = "torch_warmup_peak/Dec02_10-00-00_demo"
        keras_run = "keras_lr_optimizer/run-0/train"
        tb.wait_for_runs([torch_run, keras_run])
        listing = tb.listing()
        val_step = listing[torch_run]["Loss/val"].max_step + 10
        loss_step = listing[keras_run]["epoch_loss"].max_step + 1
        before, (better, died) = _changes_give_the_cold_report(tb, [
            (torch_run, "Loss/val", [(val_step, 1e-4)]),
            (keras_run, "epoch_loss", [(loss_step, float("nan"))]),
        ], monkeypatch)
        assert before["sweep"] and better["sweep"] and died["sweep"]
        best = next(r for r in better["runs"] if r["run"] == torch_run)["validation_best"]
        assert best["step"] == val_step
        assert next(r for r in died["runs"] if r["run"] == "keras_lr_optimizer/run-0")["status"] == "error"
        assert any("hparams" in r and r["hparam_sources"] for r in better["runs"])
    finally:
        tb.close()


# -- sampling -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    w = SimpleValueWriter(root / "long")
    w.add("loss", decaying(1500, 2.0, 0.1, noise=0.01, seed=11))
    w.close()
    w = SimpleValueWriter(root / "short")
    w.add("loss", decaying(100, 2.0, 0.1, seed=12))
    w.close()
    return root


@pytest.mark.parametrize("kind", PROVIDERS)
def test_sampled_series_are_flagged(long_logdir, kind):
    tb = TB(long_logdir, kind)
    try:
        tb.wait_for_runs(["long", "short"])
        rep = parse_report(tb.report())
        assert rep["sampled"] is True
        assert rep["sampling"]["limit"] == 1000
        assert "--samples_per_plugin scalars=0" in rep["sampling"]["hint"]
        points = {s["run"]: s["points"] for r in rep["runs"] for s in r["series"]}
        assert points == {"long": 1000, "short": 100}
        short = parse_report(tb.report("run=short"))
        assert short["sampled"] is False and "sampling" not in short
    finally:
        tb.close()


def test_samples_per_plugin_zero_keeps_every_point(long_logdir):
    tb = TB(long_logdir, "python", "--samples_per_plugin", "scalars=0")
    rep = parse_report(tb.report())
    assert rep["sampled"] is False and "sampling" not in rep
    points = {s["run"]: s["points"] for r in rep["runs"] for s in r["series"]}
    assert points == {"long": 1500, "short": 100}


# -- failures never give a 500 -----------------------------------------------------------------


def test_dead_data_server_gives_503(tmp_path):
    SimpleValueWriter(tmp_path / "r").add("loss", [1.0, 0.5, 0.25]).close()
    tb = TB(tmp_path, "rust")
    tb.wait_for_runs(["r"])
    tb.close()  # the data server exits when its stdin closes
    tb.ingester._data_provider  # noqa: B018 - still configured, but nothing answers
    resp = wait_until(lambda: (lambda r: r if r.status_code == 503 else None)(tb.report()), timeout=20)
    assert resp is not None, "expected 503 once the data server is gone"
    assert resp.mimetype == "application/json"
    message = json.loads(resp.get_data(as_text=True))["error"]
    # Written for users: no gRPC status, exception class or address from the failure inside.
    assert not re.search(r"StatusCode|RpcError|Traceback|Exception|127\.0\.0\.1|localhost", message), message
    assert json.loads(resp.get_data(as_text=True))["error"]


def test_engine_failure_is_listed_under_problems(apps, monkeypatch):
    import tb_lossdoctor.engine as engine

    real, real_each = engine.diagnose, engine.diagnose_each

    def flaky(series, settings=None, problems=None):
        series = list(series)
        if any(s.run == "exploded" for s in series):
            raise RuntimeError("boom")
        return real(series, settings, problems=problems)

    def flaky_each(items, settings=None):  # a chunk with the bad group fails as a whole
        items = [(list(series), problems) for series, problems in items]
        if any(s.run == "exploded" for series, _ in items for s in series):
            raise RuntimeError("boom")
        return real_each(items, settings)

    tb = apps["python"]
    fresh(tb)
    monkeypatch.setattr(engine, "diagnose", flaky)
    monkeypatch.setattr(engine, "diagnose_each", flaky_each)
    try:
        rep = parse_report(tb.report())
    finally:
        monkeypatch.undo()
        fresh(tb)
    assert "exploded" not in {r["run"] for r in rep["runs"]}
    assert {"torchish", "kerasish"} <= {r["run"] for r in rep["runs"]}
    assert any(p.get("run") == "exploded" and "diagnosis failed" in p["reason"] for p in rep["problems"])
    assert not any("boom" in p["reason"] for p in rep["problems"])  # internal text stays in the log


# -- real-world logs and the demo --------------------------------------------------------------


def _compare_providers(logdir):
    reports = {}
    expected = None
    for kind in PROVIDERS:
        tb = TB(logdir, kind)
        try:
            if expected is None:
                expected = tb.listing_key()
            else:  # the data server loads in the background: wait until it has everything
                tb.wait_for_listing(expected)
            reports[kind] = parse_report(tb.report())
            assert tb.provider.calls["read_scalars"] == 1
            for group in [r["run"] for r in reports[kind]["runs"]]:
                one = parse_report(tb.report("run=" + group))
                assert [r["run"] for r in one["runs"]] == [group]
            assert tb.provider.calls["read_scalars"] == 1
        finally:
            tb.close()
    py, rs = reports["python"], reports["rust"]
    assert py["runs"], "no run group diagnosed"
    assert series_runs(py) == series_runs(rs)
    assert sorted(r["run"] for r in py["runs"]) == sorted(r["run"] for r in rs["runs"])
    # Verdicts can only be compared when neither provider sampled: beyond 1,000 points per tag the
    # two keep different samples, and for tags logged several times per step the data server keeps
    # only the last value of each step (the multiplexer keeps them all, up to its budget).
    if not py["sampled"] and not rs["sampled"]:
        assert without_time(py) == without_time(rs)
    return py


def test_realworld_logs_on_both_providers(realworld_dir):
    rep = _compare_providers(realworld_dir)
    assert len(rep["runs"]) >= 8


def test_demo_logs_on_both_providers(demo_logdir):
    _compare_providers(demo_logdir)


def test_resolve_static_path_stays_inside(tmp_path):
    root = tmp_path / "static"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.js").write_text("a")
    (tmp_path / "secret.txt").write_text("s")
    assert plugin_mod.resolve_static_path(str(root), "sub/a.js") == os.path.realpath(root / "sub" / "a.js")
    for rel in ["", "sub", "../secret.txt", "sub/../../secret.txt", "/etc/passwd", str(tmp_path / "secret.txt"),
                "sub\\..\\..\\secret.txt", "sub/./a.js", "sub//a.js", "a.js\x00", "C:secret.txt", ".hidden"]:
        assert plugin_mod.resolve_static_path(str(root), rel) is None, rel


# -- the series route (chart points) -----------------------------------------------------------


def test_series_route_returns_points_with_nan_as_string(tmp_path, simple_value_writer):
    from tensorboard.backend.event_processing import data_provider as mdp
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem

    from tb_lossdoctor.plugin import LossDoctorPlugin
    from tensorboard.plugins import base_plugin
    from werkzeug.test import Client
    from werkzeug.wrappers import Response
    from tensorboard.backend import application

    writer = simple_value_writer(tmp_path / "run<1>")
    writer.add("Loss/train", [3.0, 2.0, float("nan"), 1.0])
    mux = pem.EventMultiplexer(tensor_size_guidance={"scalars": 0})
    mux.AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    ctx = base_plugin.TBContext(data_provider=mdp.MultiplexerDataProvider(mux, str(tmp_path)),
                                logdir=str(tmp_path), sampling_hints={})
    app = application.TensorBoardWSGI([LossDoctorPlugin(ctx)])
    client = Client(app, Response)
    ok = client.get("/data/plugin/lossdoctor/series", query_string={"run": "run<1>", "tag": "Loss/train"})
    assert ok.status_code == 200
    body = json.loads(ok.get_data())
    assert body["steps"] == [0, 1, 2, 3]
    assert body["values"] == [3.0, 2.0, "NaN", 1.0]
    missing = client.get("/data/plugin/lossdoctor/series", query_string={"run": "run<1>", "tag": "nope"})
    assert missing.status_code == 404
    for bad in ({"run": "run<1>"}, {"tag": "x"}, {"run": "a", "tag": "b", "extra": "1"}):
        assert client.get("/data/plugin/lossdoctor/series", query_string=bad).status_code == 400


@pytest.mark.parametrize("kind", PROVIDERS)
def test_one_build_per_key_and_a_cached_report_never_waits(apps, kind):
    """Six requests for a cold report share one build (one read); while that build is stuck in
    the provider, a report that is already cached is still served."""
    tb = apps[kind]
    fresh(tb)
    one_group = parse_report(tb.report())["runs"][0]["run"]
    fresh(tb)
    tb.report("run=" + one_group)  # now cached
    reads_before = tb.plugin._cache.reads
    bodies = []
    threads = [threading.Thread(target=lambda: bodies.append(tb.report().get_data())) for _ in range(6)]
    with tb.provider.stuck_reads():
        for t in threads:
            t.start()
        assert tb.provider.reading.wait(20), "the cold build never reached the provider"
        cached = []
        side = threading.Thread(target=lambda: cached.append(tb.report("run=" + one_group)))
        side.start()
        side.join(20)
        assert cached and cached[0].status_code == 200, "a cached report waited for another build"
        assert not tb.provider.gate.is_set() and len(bodies) == 0  # the build is still stuck
    for t in threads:
        t.join(30)
    assert len(bodies) == 6 and len(set(bodies)) == 1
    assert tb.plugin._cache.reads - reads_before == 1


def test_report_never_waits_for_the_logdir_listing(tmp_path, monkeypatch):
    """The listing of empty/unreadable files runs on its own thread: while it is stuck (a slow
    network filesystem), reports are still served; a remote logdir is never listed."""
    from tb_lossdoctor.readers import logdir as logdir_mod

    SimpleValueWriter(tmp_path / "r").add("loss", decaying(30)).close()
    release = threading.Event()
    real_scan = logdir_mod.scan_problems

    def stuck_scan(*args, **kwargs):
        release.wait(30)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(logdir_mod, "scan_problems", stuck_scan)
    tb = TB(tmp_path, "python")
    try:
        served = []
        worker = threading.Thread(target=lambda: served.append(tb.report().status_code))
        worker.start()
        worker.join(20)
        assert served == [200], "a report waited for the logdir listing"
        assert tb.plugin._file_scan.scans == 0  # the listing is still stuck
    finally:
        release.set()
    remote = plugin_mod.LogdirScan("gs://some-bucket/logs")
    assert remote.problems() == [] and not remote._started


@pytest.mark.parametrize("kind", PROVIDERS)
def test_a_poll_with_nothing_new_ships_no_report(apps, kind):
    """The report carries an ETag; a poll that sends it back gets 304 and an empty body until the
    data changes (the tab polls every 30 s: a 10 MB report is not shipped again for nothing)."""
    tb = apps[kind]
    first = tb.report()
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag
    again = tb.client.get(tb.prefix + BASE + "/report", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    other = tb.client.get(tb.prefix + BASE + "/report", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200 and json.loads(other.get_data(as_text=True))["runs"]


@pytest.mark.parametrize("kind", PROVIDERS)
def test_a_gzip_client_gets_the_report_compressed_once(apps, kind):
    """A browser (gzip accepted) gets the report compressed; the compression is done once per
    body, not per request: two requests get the very same bytes, which unpack to the report a
    client without gzip gets."""
    tb = apps[kind]
    plain = tb.report().get_data()
    zipped = [tb.get(BASE + "/report", headers={"Accept-Encoding": "gzip"}) for _ in range(2)]
    assert all(r.status_code == 200 and r.headers["Content-Encoding"] == "gzip" for r in zipped)
    assert zipped[0].get_data() == zipped[1].get_data()
    assert gzip.decompress(zipped[0].get_data()) == plain
    assert any(known is not None and gz == zipped[0].get_data() for known, _, gz in tb.plugin._served)


@pytest.mark.parametrize("kind", PROVIDERS)
def test_the_cache_keeps_one_body_per_view_as_runs_change(tmp_path, kind):
    """Each change of the data gives a new report key; the body of the old key is never asked
    for again and is dropped (at 10,000 runs a body is 13 MB): one body per view (the whole
    report, one run's), however many changes."""
    for name in ("alpha", "beta"):
        SimpleValueWriter(tmp_path / name).add("loss", decaying(40, 2.0, 0.3, seed=len(name))).close()
    tb = TB(tmp_path, kind)
    try:
        tb.wait_for_runs(["alpha", "beta"])
        for change in range(3):
            parse_report(tb.report())
            parse_report(tb.report("run=beta"))
            _append_point(str(tmp_path / "alpha"), "loss", 40 + change, 0.4)
            tb.reload(expect=lambda lst, last=40 + change: lst.get("alpha", {}).get("loss")
                      and lst["alpha"]["loss"].max_step == last)
        latest = parse_report(tb.report())
        assert {s["points"] for r in latest["runs"] if r["run"] == "alpha" for s in r["series"]} == {43}
        assert tb.plugin._cache.sizes()[1] == 2
    finally:
        tb.close()


@pytest.mark.parametrize("kind", PROVIDERS)
def test_a_slow_cold_report_answers_with_what_is_diagnosed_so_far(apps, kind, monkeypatch):
    """With partial=1 (the tab), a report whose build is stuck answers after a few seconds with
    the run groups diagnosed so far and how many are pending; the build goes on, and once it
    finishes the whole report is served. Without `partial`, a request waits for the whole report."""
    monkeypatch.setattr(plugin_mod, "PARTIAL_AFTER_SECONDS", 0.5)
    monkeypatch.setattr(plugin_mod, "FIRST_PARTIAL_AFTER_SECONDS", 0.5)
    tb = apps[kind]
    fresh(tb)
    with tb.provider.stuck_reads():
        first = tb.report("partial=1")
        assert first.status_code == 200
        rep = json.loads(first.get_data(as_text=True))
        assert rep["pending"]["count"] > 0 and rep["sweep"] is None
        assert len(rep["runs"]) + rep["pending"]["count"] >= 1
    full = wait_until(lambda: (lambda r: r if "pending" not in r else None)(
        json.loads(tb.report("partial=1").get_data(as_text=True))), timeout=60)
    assert full and full["runs"] and "pending" not in full
    assert tb.report("partial=2").status_code == 400


@pytest.mark.parametrize("kind", PROVIDERS)
def test_a_build_started_while_another_runs_diagnoses_only_what_it_adds(tmp_path, kind, monkeypatch):
    """The tab opened while TensorBoard was still listing the logdir: a build runs for the runs
    listed so far, a new run appears, and the next poll (a new report key) starts a second build.
    That one waits for the first instead of diagnosing the same groups side by side: every group
    is diagnosed once, meanwhile its partial answers count every group as pending, and the
    report that ends the wait has every run."""
    monkeypatch.setattr(plugin_mod, "PARTIAL_AFTER_SECONDS", 0.3)
    monkeypatch.setattr(plugin_mod, "FIRST_PARTIAL_AFTER_SECONDS", 0.3)
    for i in range(6):
        SimpleValueWriter(tmp_path / f"run{i}").add("loss", decaying(40, seed=i)).close()
    tb = TB(tmp_path, kind)
    try:
        tb.wait_for_runs([f"run{i}" for i in range(6)])
        with tb.provider.stuck_reads():
            first = parse_report(tb.report("partial=1"))
            assert first["pending"]["count"] == 6
            cache = tb.plugin._cache
            diagnosed = cache.diagnosed_groups
            SimpleValueWriter(tmp_path / "run6").add("loss", decaying(40, seed=6)).close()
            tb.reload(expect=lambda listing: "run6" in listing)
            second = parse_report(tb.report("partial=1"))
            assert second["pending"]["count"] == 7
        full = wait_until(lambda: (lambda r: r if "pending" not in r else None)(
            parse_report(tb.report("partial=1"))), timeout=60)
        assert sorted(r["run"] for r in full["runs"]) == [f"run{i}" for i in range(7)]
        assert cache.diagnosed_groups - diagnosed == 7  # 6 by the first build, 1 by the second
    finally:
        tb.close()


@pytest.mark.parametrize("kind", PROVIDERS)
def test_the_request_that_starts_a_build_gets_its_first_cards_sooner(apps, kind, monkeypatch):
    """The tab's first request starts the build and is answered after FIRST_PARTIAL_AFTER_SECONDS
    (what the user waits for); a poll while that build still runs waits PARTIAL_AFTER_SECONDS
    (each partial answer costs an assembly). Here the build is stuck until the test lets it go."""
    monkeypatch.setattr(plugin_mod, "FIRST_PARTIAL_AFTER_SECONDS", 0.2)
    monkeypatch.setattr(plugin_mod, "PARTIAL_AFTER_SECONDS", 60.0)
    tb = apps[kind]
    fresh(tb)
    with tb.provider.stuck_reads():
        started = time.monotonic()
        first = json.loads(tb.report("partial=1").get_data(as_text=True))
        assert time.monotonic() - started < 30  # not the 60 s of a poll
        assert first["pending"]["count"] > 0
        answered = []
        poll = threading.Thread(target=lambda: answered.append(tb.report("partial=1")), daemon=True)
        poll.start()
        poll.join(2.0)
        assert not answered  # a poll holds on while the build runs
    poll.join(60)
    assert answered and "pending" not in json.loads(answered[0].get_data(as_text=True))
