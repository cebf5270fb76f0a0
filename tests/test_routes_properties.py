"""Property-based tests of the plugin's HTTP routes: arbitrary query strings and paths.

The WSGI environ is built by hand (raw PATH_INFO and QUERY_STRING, as a server passes them, with
no client library normalising anything) and sent through TensorBoard's whole application (its
security, path-prefix and experiment-id middleware included). Whatever the input:
- no exception and never a 500;
- `report` and `series` always answer JSON (errors included), strictly valid (no bare NaN);
- a 200 `report` always matches the spec (shared/spec/report.md), with non-finite evidence
  written as strings;
- a static path answers 200 only with a file of the static folder, else 404;
- every response keeps TensorBoard's security headers (nosniff; a CSP on HTML).
"""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import create_environ, run_wsgi_app

from conftest import SimpleValueWriter, decaying
from test_plugin_http import BASE, TB, check_report

pytestmark = pytest.mark.timeout(300)

RUNS = {
    "good": {"loss": decaying(80, 2.0, 0.2, seed=1)},
    "nan run": {"loss": decaying(40, 2.0, 0.5, seed=2) + [float("inf"), float("nan")] * 5},
    "<script>alert(1)</script>/train": {"epoch_loss": decaying(30, 1.0, 0.3, seed=3)},
    "<script>alert(1)</script>/validation": {"epoch_loss": decaying(30, 1.1, 0.4, seed=4)},
    "ünï cødé &amp; %2e%2e": {"val/acc": [0.1 * i for i in range(10)], "train/acc": [0.1 * i for i in range(10)]},
}
NAMES = sorted(RUNS) + ["<script>alert(1)</script>", "nope", "", "%00", ".."]
TAGS = sorted({t for tags in RUNS.values() for t in tags}) + ["", "nope", "\x00"]
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("routes")
    for run, tags in RUNS.items():
        w = SimpleValueWriter(root / run)
        for tag, values in tags.items():
            w.add(tag, values)
        w.close()
    return root


@pytest.fixture(scope="module")
def tb(logdir):
    t = TB(logdir, "python")
    t.wait_for_runs(RUNS)
    yield t
    t.close()


@pytest.fixture(scope="module")
def static_files():
    from tb_lossdoctor import plugin as plugin_mod

    out = {}
    for dirpath, _, filenames in os.walk(plugin_mod.STATIC_DIR):
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[f] = fh.read()
    return out


def call(app, path_info: str, query: str = ""):
    """One request with a raw PATH_INFO / QUERY_STRING (WSGI strings are latin-1 decoded bytes)."""
    environ = create_environ("/", "http://127.0.0.1:6006/")
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = query
    app_iter, status, headers = run_wsgi_app(app, environ, buffered=True)
    body = b"".join(app_iter)
    return int(status.split()[0]), headers, body


def wsgi_str(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


def strict_json(body: bytes):
    def bare(constant):
        raise AssertionError("bare %s in a JSON response" % constant)

    return json.loads(body.decode("utf-8"), parse_constant=bare)


def check_headers(status, headers):
    assert status != 500 and status < 600, status
    assert headers.get("X-Content-Type-Options") == "nosniff"
    if (headers.get("Content-Type") or "").startswith("text/html"):
        assert headers.get("Content-Security-Policy"), "HTML without a Content-Security-Policy"


def check_json_route(status, headers, body):
    check_headers(status, headers)
    assert headers.get("Content-Type", "").startswith("application/json"), (status, headers, body[:200])
    doc = strict_json(body)
    if status == 200:
        return doc
    assert status in (400, 404, 503), (status, doc)
    assert isinstance(doc.get("error"), str) and doc["error"]
    return None


def check_evidence_strings(rep):
    """Non-finite numbers only as the spec's strings, anywhere in the document."""
    def walk(x):
        if isinstance(x, float):
            assert x == x and abs(x) != float("inf")
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(rep)


# -- strategies --------------------------------------------------------------------------------

_chars = st.characters(blacklist_categories=("Cs",))
_key = st.one_of(st.sampled_from(["run", "tag", "run[]", "RUN", "", "format", "experiment"]), st.text(_chars, max_size=8))
_value = st.one_of(st.sampled_from(NAMES + TAGS), st.text(_chars, max_size=40), st.just("x" * 2000))


@st.composite
def queries(draw):
    pairs = draw(st.lists(st.tuples(_key, _value), max_size=4))
    how = draw(st.sampled_from(["encoded", "raw", "junk"]))
    if how == "encoded":
        return urllib.parse.urlencode(pairs)
    if how == "raw":
        return wsgi_str("&".join("%s=%s" % kv for kv in pairs))
    return wsgi_str(draw(st.text(st.sampled_from("=&;%?#+ az09\x00\xff/.\\<>\"'"), max_size=60)))


_segment = st.one_of(
    st.sampled_from(["index.js", "..", ".", "%2e%2e", "%2f", "..%2f", "%00", "", "etc", "passwd", "report",
                     "series", ".hidden", "C:", "\\..\\", "static", "/etc/passwd", "%252e%252e"]),
    st.text(_chars, max_size=12),
)
paths = st.lists(_segment, min_size=1, max_size=5).map(lambda parts: wsgi_str("/".join(parts)))


# -- properties --------------------------------------------------------------------------------


@SETTINGS
@given(query=queries())
def test_report_route_any_query(tb, query):
    status, headers, body = call(tb.app, BASE + "/report", query)
    rep = check_json_route(status, headers, body)
    if rep is not None:
        check_report(rep)
        check_evidence_strings(rep)
        assert len(rep["runs"]) >= 1


@SETTINGS
@given(run=st.sampled_from(NAMES), extra=st.one_of(st.just(""), queries()))
def test_report_route_run_filter(tb, run, extra):
    query = urllib.parse.urlencode({"run": run}) + ("&" + extra if extra else "")
    status, headers, body = call(tb.app, BASE + "/report", query)
    rep = check_json_route(status, headers, body)
    if rep is not None:
        check_report(rep)
        check_evidence_strings(rep)
        assert [r["run"] for r in rep["runs"]] == [run]


@SETTINGS
@given(query=queries(), run=st.sampled_from(NAMES + ["good"]), tag=st.sampled_from(TAGS),
       axis=st.tuples(st.sampled_from(NAMES + ["good"]), st.sampled_from(TAGS)))
def test_series_route_any_query(tb, query, run, tag, axis):
    with_axis = {"run": run, "tag": tag, "axis_run": axis[0], "axis_tag": axis[1]}
    for q in (query, urllib.parse.urlencode({"run": run, "tag": tag}), urllib.parse.urlencode(with_axis)):
        status, headers, body = call(tb.app, BASE + "/series", q)
        doc = check_json_route(status, headers, body)
        if doc is not None:
            assert set(doc) >= {"run", "tag", "steps", "values"}
            assert len(doc["steps"]) == len(doc["values"])
            assert all(isinstance(v, (int, float)) or v in ("NaN", "Infinity", "-Infinity") for v in doc["values"])


@SETTINGS
@given(path=paths, query=st.one_of(st.just(""), queries()))
def test_static_paths_stay_inside(tb, static_files, path, query):
    status, headers, body = call(tb.app, BASE + "/" + path, query)
    check_headers(status, headers)
    route = path.split("?")[0].rstrip("/")  # TensorBoard drops a trailing slash before routing
    if route in ("report", "series"):
        check_json_route(status, headers, body)
        return
    assert status in (200, 404), (path, status)
    if status == 200:
        name = path.rsplit("/", 1)[-1]
        assert static_files.get(name) == body, "served something that is not a file of the static folder: %r" % path
    else:
        assert b"root:" not in body


@SETTINGS
@given(path=paths)
def test_experiment_prefixed_paths(tb, path):
    """The same routes under /experiment/<id>/: TensorBoard's middleware, then the plugin."""
    status, headers, body = call(tb.app, "/experiment/e1" + BASE + "/" + path)
    check_headers(status, headers)
    assert status in (200, 400, 404, 503)


# -- security headers on every route (plain examples) -----------------------------------------


def test_security_headers_on_every_plugin_route(tb, tmp_path):
    cases = [
        (BASE + "/report", ""),
        (BASE + "/report", "run=good"),
        (BASE + "/report", "run=nope"),  # 404
        (BASE + "/report", "bogus=1"),  # 400
        (BASE + "/series", "run=good&tag=loss"),
        (BASE + "/series", "run=good"),  # 400
        (BASE + "/series", "run=good&tag=nope"),  # 404
        (BASE + "/index.js", ""),
        (BASE + "/../../etc/passwd", ""),
        (BASE + "/nope.js", ""),
    ]
    for path, query in cases:
        status, headers, _ = call(tb.app, path, query)
        check_headers(status, headers)

    # HTML from the static folder gets TensorBoard's Content-Security-Policy.
    static = tmp_path / "static"
    static.mkdir()
    (static / "page.html").write_text("<p>hi</p>")
    (static / "index.js").write_text("export function render() {}")
    saved = tb.plugin._static_dir
    tb.plugin._static_dir = str(static)
    try:
        status, headers, body = call(tb.app, BASE + "/page.html")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        check_headers(status, headers)
        csp = headers["Content-Security-Policy"]
        assert "script-src" in csp and "default-src 'self'" in csp
        status, headers, _ = call(tb.app, BASE + "/index.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        check_headers(status, headers)
    finally:
        tb.plugin._static_dir = saved

    # With no data provider the report is a JSON 503, with the same headers.
    provider, tb.plugin._data_provider = tb.plugin._data_provider, None
    try:
        for path in (BASE + "/report", BASE + "/series"):
            status, headers, body = call(tb.app, path, "run=good&tag=loss" if "series" in path else "")
            assert status == 503
            check_json_route(status, headers, body)
    finally:
        tb.plugin._data_provider = provider
