"""Security against the real `tensorboard` process: hostile names in a real browser, raw paths.

- Runs and tags named `<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>` and
  `javascript:alert(1)` are shown as text everywhere in the Diagnosis tab: every card and finding
  is expanded (charts and legends drawn), no dialog fires, no injected element exists, the names
  appear as text, and no request leaves 127.0.0.1.
- Static asset routes cannot escape the static folder, checked with raw request paths sent by
  `http.client` (nothing normalises `..` or `%2e%2e` on the way).
- TensorBoard's security headers are kept on every plugin route (nosniff; a CSP on HTML).

Same requirements as tests/test_browser_e2e.py (Chromium at /usr/bin/chromium, Playwright).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
from pathlib import Path

import pytest

from conftest import SimpleValueWriter, decaying
from tensorboard_process import plugin_frame, running_tensorboard
from test_browser_e2e import browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(300)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
# run -> {tag: values}; every hostile string is both a run name and part of a tag name.
RUNS = {
    SCRIPT: {"loss/" + IMG: decaying(60, 2.0, 0.5, seed=1)[:50] + [float("nan")] * 10},
    IMG: {JS_URL + "/loss": decaying(60, 2.0, 0.2, seed=2), "val_" + SCRIPT + "_loss": decaying(60, 2.1, 0.3, seed=3)},
    JS_URL: {
        "loss": decaying(80, 2.0, 0.05, noise=0.01, seed=4),
        "val_loss": [min(v, 0.6) + max(0, i - 30) * 0.02 for i, v in enumerate(decaying(80, 2.1, 0.4, seed=5))],
    },
}
ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "tb_lossdoctor" / "static"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (STATIC / "index.js").is_file():
        pytest.fail("tb_lossdoctor/static/index.js is missing: build the frontend first")
    logdir = tmp_path_factory.mktemp("hostile") / "logs"
    for run, tags in RUNS.items():
        w = SimpleValueWriter(logdir / run)  # "/" inside a name makes nested folders: same run name
        for tag, values in tags.items():
            w.add(tag, values)
        w.close()
    wanted = {(run, tag) for run, tags in RUNS.items() for tag in tags}
    args = ["--samples_per_plugin", "scalars=0", "--reload_interval", "1"]

    def ready(report):
        return {(s["run"], s["tag"]) for r in report["runs"] for s in r["series"]} >= wanted

    with running_tensorboard(logdir, args, ready, timeout=120) as (base, port, report):
        yield base, port, report


# -- raw HTTP ------------------------------------------------------------------------------------


def raw_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)  # the path as given
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


P = "/data/plugin/lossdoctor/"
TRAVERSALS = [
    P + "../../../../../../etc/passwd",
    P + "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    P + "%2E%2E/plugin.py",
    P + "..%2fplugin.py",
    P + "%2e%2e%2fplugin.py",
    P + "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    P + "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    P + "static/../plugin.py",
    P + "./index.js/../../plugin.py",
    P + "..\\plugin.py",
    P + "..%5cplugin.py",
    P + "/etc/passwd",
    P + "%2fetc%2fpasswd",
    P + "%2Fetc%2Fpasswd",
    P + "//etc//passwd",
    P + "%252e%252e/plugin.py",
    P + "index.js%00.html",
    P + "..;/plugin.py",
    P + "C:%5cwindows%5cwin.ini",
    P + ".%2e/plugin.py",
    P + "%c0%ae%c0%ae/plugin.py",
    "/experiment/x" + P + "%2e%2e/plugin.py",
    "/experiment/x" + P + "../../../../../../etc/passwd",
    "/data/plugin/lossdoctor/../../../../../../" + str(ROOT / "tb_lossdoctor" / "plugin.py").lstrip("/"),
    P + str(ROOT / "tb_lossdoctor" / "plugin.py"),
    P + urllib.parse.quote(str(ROOT / "tb_lossdoctor" / "plugin.py"), safe=""),
]


def test_raw_traversal_paths_never_escape(server):
    _, port, _ = server
    secret_markers = [b"root:", b"class LossDoctorPlugin", b"[fonts]", b"[boot loader]"]
    results = []
    for path in TRAVERSALS:
        status, headers, body = raw_get(port, path)
        results.append((path, status))
        assert status in (400, 404), (path, status, body[:200])
        assert not any(m in body for m in secret_markers), path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
    # and the real file is still served
    status, headers, body = raw_get(port, P + "index.js")
    assert status == 200 and body == (STATIC / "index.js").read_bytes()
    print("\n" + "\n".join("%d %s" % (s, p) for p, s in results))


def test_security_headers_on_the_real_server(server):
    _, port, report = server
    group = report["runs"][0]["run"]
    s = report["runs"][0]["series"][0]
    routes = [
        P + "report",
        P + "report?run=" + urllib.parse.quote(group, safe=""),
        P + "report?run=nope",  # 404
        P + "report?bogus=1",  # 400
        P + "series?" + urllib.parse.urlencode({"run": s["run"], "tag": s["tag"]}),
        P + "series?run=x",  # 400
        P + "index.js",
        P + "missing.js",
    ]
    for path in routes:
        status, headers, _ = raw_get(port, path)
        assert status < 500, path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        if headers.get("Content-Type", "").startswith("text/html"):
            assert headers.get("Content-Security-Policy"), path
    for path in ("/", "/data/plugin_entry.html?name=lossdoctor"):  # the HTML hosting the tab
        status, headers, _ = raw_get(port, path)
        assert status == 200 and headers["Content-Type"].startswith("text/html"), path
        assert headers.get("X-Content-Type-Options") == "nosniff"
        csp = headers.get("Content-Security-Policy", "")
        script_src = csp.split("script-src", 1)[1].split(";")[0] if "script-src" in csp else ""
        assert "'self'" in script_src and "'unsafe-inline'" not in script_src, csp  # TensorBoard's policy


# -- the browser ---------------------------------------------------------------------------------


def _injected(frame):
    return frame.evaluate(
        """() => ({
            img: document.querySelectorAll('img[src="x"], img[src$="/x"]').length,
            onerror: document.querySelectorAll('[onerror]').length,
            scripts: [...document.scripts].filter(s => s.textContent.includes('alert(1)')).length,
            jsLinks: [...document.querySelectorAll('[href],[src],[action]')].filter(e =>
                /^\\s*javascript:/i.test(e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action') || '')).length,
        })"""
    )


def test_hostile_names_render_as_text(browser, server):  # noqa: F811 (fixture)
    base, port, report = server
    groups = {r["run"]: r for r in report["runs"]}
    assert set(groups) == set(RUNS), sorted(groups)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    dialogs, requests, errors = [], [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(base + "/#lossdoctor", wait_until="domcontentloaded")
        frame = plugin_frame(page)
        frame.wait_for_function("document.querySelectorAll('.ld-card').length === %d" % len(RUNS))
        charts = 0
        for run, entry in groups.items():
            card = frame.locator(".ld-card[data-run=%s]" % json.dumps(run))
            assert card.count() == 1, run
            assert card.locator(".ld-run").inner_text() == run
            head = card.locator(".ld-card-head")
            if head.get_attribute("aria-expanded") != "true":
                head.click()
            findings = card.locator(".ld-finding")
            assert findings.count() == len(entry["findings"]) > 0, run
            for i in range(findings.count()):
                finding = findings.nth(i)
                fhead = finding.locator(".ld-finding-head")
                if fhead.get_attribute("aria-expanded") != "true":
                    fhead.click()
                finding.locator("canvas").first.wait_for(state="visible", timeout=20000)
                legend = finding.locator(".ld-chart-legend").first
                frame.wait_for_function("el => el.textContent.includes(' / ')", arg=legend.element_handle(), timeout=10000)
                text = legend.inner_text()
                for tag in finding_tags(entry["findings"][i]):
                    assert tag in text, (tag, text)
                charts += 1
            body = card.inner_text()
            assert run in body
            for s in entry["series"]:
                assert s["tag"] in frame.locator("body").inner_text() or s["role"] == "lr", s
        assert charts >= len(RUNS)

        # The filter box takes a hostile string as text too.
        frame.locator("#ld-filter-regex").fill(IMG)
        frame.wait_for_function("document.querySelectorAll('.ld-card').length <= 1")
        frame.locator("#ld-filter-regex").fill("")
        page.wait_for_timeout(500)

        for f in [page.main_frame, frame]:
            assert _injected(f) == {"img": 0, "onerror": 0, "scripts": 0, "jsLinks": 0}, f.url
        text = frame.locator("body").inner_text()
        for name in (SCRIPT, IMG, JS_URL):
            assert name in text
        assert dialogs == [], dialogs
        assert errors == [], errors
        outside = [u for u in requests
                   if not (u.startswith(base + "/") or u == base or u.split(":", 1)[0] in ("data", "blob", "about"))]
        assert outside == [], outside
        print("\n%d requests, all to %s; %d charts drawn" % (len(requests), base, charts))
    finally:
        context.close()


def finding_tags(finding):
    """The tag names of a finding's curves (`run:tag` keys; a run name may itself hold ':')."""
    out = []
    for key in finding.get("tags", []):
        for run in RUNS:
            if key.startswith(run + ":"):
                out.append(key[len(run) + 1:])
                break
    return out
