"""End to end: the real `tensorboard` serving the Diagnosis tab, driven in headless Chromium.

TensorBoard runs on a copy of demo/logs plus a run with a hostile name; the test opens the
Diagnosis tab, enters the plugin's iframe, and checks that
- every demo run of demo/expected.json is listed with its expected finding codes (and a title);
- expanding a finding (by keyboard) draws its chart on a canvas;
- the run filter narrows the list, and an invalid regular expression shows an error, not a crash;
- the hostile run name is shown as text: no dialog fires and no <img src=x> element exists.
It saves a screenshot per backend in the temp folder (UPDATE_SCREENSHOT=1 refreshes docs/screenshot.png).

Needs the package installed so TensorBoard finds the plugin (`pip install -e . --no-deps`),
Playwright (Python) and Debian's Chromium at /usr/bin/chromium (never a downloaded browser).
Skips when Chromium or Playwright is missing, except under CI=true, where that is a failure.
`LOSSDOCTOR_E2E_LOGDIR` / `LOSSDOCTOR_E2E_EXPECTED` point it at other logs (development only).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from importlib import metadata
from pathlib import Path

import pytest

from tensorboard_process import get_json, plugin_frame, running_tensorboard

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
HOSTILE = "<img src=x onerror=alert(1)>"
SCREENSHOT = ROOT / "docs" / "screenshot.png"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytestmark = pytest.mark.timeout(300)


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


def _logs_and_expected():
    logdir = Path(os.environ.get("LOSSDOCTOR_E2E_LOGDIR", ROOT / "demo" / "logs"))
    expected_path = Path(os.environ.get("LOSSDOCTOR_E2E_EXPECTED", ROOT / "demo" / "expected.json"))
    has_events = logdir.is_dir() and any(p.name.startswith("events.out.tfevents") for p in logdir.rglob("*"))
    if not has_events or not expected_path.is_file():
        _unavailable(f"demo logs or expected findings missing ({logdir}, {expected_path})")
    return logdir, _parse_expected(json.loads(expected_path.read_text()))


def _codes(value) -> list:
    """Expected codes of one run, whatever the shape: "code", ["code", ...], {"codes": [...]}."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        for key in ("codes", "expected", "expect", "findings", "code"):
            if key in value:
                return _codes(value[key])
        return []
    out = []
    for v in value:
        out.extend(_codes(v) if not isinstance(v, str) else [v])
    return out


def _parse_expected(doc) -> dict:
    if isinstance(doc, dict) and isinstance(doc.get("runs"), (dict, list)):
        doc = doc["runs"]
    if isinstance(doc, list):  # [{"run": ..., "codes": [...]}, ...]
        doc = {item["run"]: item for item in doc}
    expected = {str(run): _codes(v) for run, v in doc.items()}
    assert expected, "demo/expected.json lists no run"
    return expected


def _write_hostile_run(logdir: Path) -> None:
    """A short, decreasing loss curve under a run whose name is an HTML injection attempt."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run_dir = logdir / HOSTILE
    run_dir.mkdir(parents=True)
    writer = EventFileWriter(str(run_dir))
    for step in range(60):
        value = 2.0 * 0.95**step + 0.1
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=value)])
        writer.add_event(event_pb2.Event(wall_time=1_700_000_000.0 + step, step=step, summary=summary))
    writer.close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module", params=["true", "false"], ids=["load_fast", "python_reader"])
def tensorboard_server(request, tmp_path_factory):
    """A real `tensorboard` on the demo logs, with the Rust data server and with the Python
    reader (`--load_fast`), since the plugin must behave the same on both."""
    eps = metadata.entry_points()
    group = eps.select(group="tensorboard_plugins") if hasattr(eps, "select") else eps.get("tensorboard_plugins", [])
    if not any(ep.name == "lossdoctor" for ep in group):
        pytest.fail("the lossdoctor plugin is not registered: run `pip install -e . --no-deps` first")
    if not (ROOT / "tb_lossdoctor" / "static" / "index.js").is_file():
        pytest.fail("tb_lossdoctor/static/index.js is missing: run `npm ci && npm run build` in frontend/")

    src, expected = _logs_and_expected()
    logdir = tmp_path_factory.mktemp("e2e") / "logs"
    shutil.copytree(src, logdir)
    _write_hostile_run(logdir)

    want = set(expected) | {HOSTILE}
    args = [
        "--samples_per_plugin", "scalars=0",  # the same points the CLI's diagnosis sees
        "--reload_interval", "2",
        "--load_fast", request.param,
    ]
    with running_tensorboard(logdir, args, lambda r: want <= {x["run"] for x in r["runs"]}) as (base, _, _):
        yield base, expected, request.param, logdir


def _points(base: str, run: str) -> int:
    report = get_json(base + "/data/plugin/lossdoctor/report?run=" + urllib.parse.quote(run, safe=""))
    return sum(series["points"] for series in report["runs"][0]["series"])


def _append_nan(base: str, logdir: Path, group: str) -> None:
    """The group's training loss goes NaN for five steps (a writer appends, as a live run would)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    report = get_json(base + "/data/plugin/lossdoctor/report?run=" + urllib.parse.quote(group, safe=""))
    train = next(s for s in report["runs"][0]["series"] if s["role"] == "train")
    query = urllib.parse.urlencode({"run": train["run"], "tag": train["tag"]})
    last_step = get_json(base + "/data/plugin/lossdoctor/series?" + query)["steps"][-1]
    writer = EventFileWriter(str(logdir / train["run"]), filename_suffix=".nan")
    for step in range(last_step + 1, last_step + 6):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=train["tag"], simple_value=float("nan"))])
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()


def _append_points(base: str, logdir: Path, group: str) -> None:
    """A writer adds ten later steps to the group's training curve (a new event file, as a
    resumed writer would)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    report = get_json(base + "/data/plugin/lossdoctor/report?run=" + urllib.parse.quote(group, safe=""))
    train = next(s for s in report["runs"][0]["series"] if s["role"] == "train")
    query = urllib.parse.urlencode({"run": train["run"], "tag": train["tag"]})
    points = get_json(base + "/data/plugin/lossdoctor/series?" + query)
    last_step, last_value = points["steps"][-1], points["values"][-1]
    writer = EventFileWriter(str(logdir / train["run"]), filename_suffix=".resumed")
    for step in range(last_step + 1, last_step + 11):  # the curve simply goes on where it was
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=train["tag"], simple_value=last_value)])
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()


FOCUS_CONTRAST_JS = """() => {
  const root = document.querySelector('.ld-root') || document.body;
  const css = getComputedStyle(root);
  const rgb = (v) => { const d = document.createElement('div'); d.style.color = v; document.body.append(d);
    const m = getComputedStyle(d).color.match(/\\d+(\\.\\d+)?/g).map(Number); d.remove(); return m; };
  const lum = ([r, g, b]) => [r, g, b].map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; })
    .reduce((acc, c, i) => acc + c * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const focus = rgb(css.getPropertyValue('--ld-focus').trim());
  return ['--ld-bg', '--ld-card'].map((v) => ratio(focus, rgb(css.getPropertyValue(v).trim())));
}"""


def _card(frame, run):
    return frame.locator(f".ld-card[data-run={json.dumps(run)}]")


def _ensure_open(card):
    head = card.locator(".ld-card-head")
    if head.get_attribute("aria-expanded") != "true":
        head.click()
    assert head.get_attribute("aria-expanded") == "true"


def test_diagnosis_tab_end_to_end(browser, tensorboard_server):
    base, expected, load_fast, logdir = tensorboard_server
    context = browser.new_context(viewport={"width": 1280, "height": 960}, color_scheme="light")
    page = context.new_page()
    dialogs: list = []
    page_errors: list = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        page.goto(base + "/#lossdoctor", wait_until="domcontentloaded")
        frame = plugin_frame(page)
        frame.wait_for_function("/diagnosed/.test(document.querySelector('.ld-summary').textContent)")
        # A partial first answer (runs still being diagnosed) is followed by the whole report.
        frame.wait_for_function("() => { const n = document.querySelector('.ld-pending-note'); return !n || n.hidden; }")
        summary = frame.locator(".ld-summary").inner_text()
        assert re.search(r"\d+ runs? diagnosed", summary), summary
        # Accessibility: no live region that speaks at every poll or keystroke, and a focus ring
        # with at least 3:1 contrast against the page and the cards (WCAG 2.1, 1.4.11).
        assert frame.locator(".ld-updated[role], .ld-updated[aria-live]").count() == 0
        assert frame.locator("#ld-filter-error[role=alert]").count() == 0
        assert frame.locator("#ld-filter-regex").get_attribute("aria-describedby") == "ld-filter-error"
        assert min(frame.evaluate(FOCUS_CONTRAST_JS)) >= 3.0

        # Every demo run is listed with its expected findings.
        problems = []
        for run, codes in expected.items():
            card = _card(frame, run)
            if card.count() != 1:
                problems.append(f"{run}: no card")
                continue
            assert card.locator(".ld-run").inner_text() == run
            _ensure_open(card)
            shown = card.locator(".ld-finding").evaluate_all("els => els.map(e => e.dataset.code)")
            wanted = [c for c in codes if c not in ("ok", "healthy", "none")]
            missing = [c for c in wanted if c not in shown]
            if missing:
                problems.append(f"{run}: expected {codes}, shown {shown}")
            for code in wanted:
                if code in shown:
                    title = card.locator(f'.ld-finding[data-code="{code}"] .ld-finding-title').first.inner_text()
                    assert title.strip(), f"{run}/{code}: empty title"
            if not wanted:
                assert "Healthy" in card.locator(".ld-card-head .ld-badge").inner_text(), f"{run}: expected healthy"
            # The card header leads with the run's verdict, and the verdict leads its findings.
            header = card.locator(".ld-card-head .ld-verdict").inner_text().strip()
            verdicts = [c for c in wanted if c not in ("nan", "blowup", "spikes")]
            if verdicts and verdicts[0] in shown:
                title = card.locator(f'.ld-finding[data-code="{verdicts[0]}"] .ld-finding-title').first.inner_text()
                assert header == title.strip() and shown[0] == verdicts[0], (run, header, shown)
            elif wanted:
                assert header.startswith("Run ended"), (run, header)
        assert not problems, "\n".join(problems)

        # A finding expands by keyboard and draws its chart (the series route feeds it).
        worst = frame.locator(".ld-card").first
        _ensure_open(worst)
        head = worst.locator(".ld-finding-head").first
        head.focus()
        page.keyboard.press("Enter")
        assert head.get_attribute("aria-expanded") == "true"
        finding = worst.locator(".ld-finding").first
        finding.locator("canvas").first.wait_for(state="visible", timeout=20000)
        drawn = finding.locator("canvas").first.evaluate(
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
        )
        assert drawn > 500, f"the chart canvas is blank ({drawn} painted pixels)"
        assert finding.locator(".ld-chart-legend").first.inner_text().strip()
        # Hovering reads out step and value.
        over = finding.locator(".u-over").first
        over.scroll_into_view_if_needed()
        box = over.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        frame.wait_for_function(
            "el => /^step /.test(el.textContent)", arg=finding.locator(".ld-readout").first.element_handle(), timeout=5000
        )
        # Space collapses it again (real <button>, aria-expanded kept in sync).
        head.focus()
        page.keyboard.press("Space")
        assert head.get_attribute("aria-expanded") == "false"
        page.keyboard.press("Space")
        assert head.get_attribute("aria-expanded") == "true"
        finding.locator("canvas").first.wait_for(state="visible", timeout=20000)

        # The screenshot for the README: the worst run with its chart.
        frame.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        page.mouse.move(0, 0)
        # Saved beside the logs; UPDATE_SCREENSHOT=1 also refreshes the README's copy.
        shot = Path(tempfile.gettempdir()) / f"lossdoctor-e2e-{load_fast}.png"
        page.screenshot(path=str(shot))
        if os.environ.get("UPDATE_SCREENSHOT") and load_fast == "true":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, SCREENSHOT)

        # The run filter (a regular expression, as in TensorBoard) narrows the list.
        total = frame.locator(".ld-card").count()
        target = sorted(expected)[0]
        regex = frame.locator("#ld-filter-regex")
        regex.fill("^" + re.escape(target) + "$")
        frame.wait_for_function("n => document.querySelectorAll('.ld-card').length === n", arg=1)
        assert frame.locator(".ld-card").first.get_attribute("data-run") == target
        assert total > 1

        # A refresh of the data keeps the filter and the expanded card and finding.
        target_card = _card(frame, target)
        _ensure_open(target_card)
        target_head = target_card.locator(".ld-finding-head").first
        if target_head.get_attribute("aria-expanded") != "true":
            target_head.click()
        # New points arrive in that run (a writer appends), TensorBoard reloads, the report changes.
        points_before = _points(base, target)
        _append_points(base, logdir, target)
        deadline = time.time() + 60
        while _points(base, target) == points_before:
            assert time.time() < deadline, "TensorBoard never picked up the new points"
            time.sleep(0.5)
        updated = frame.locator(".ld-meta .ld-updated").first
        before = updated.inner_text()
        page.wait_for_timeout(1100)  # the "Updated hh:mm:ss" stamp has a one-second resolution
        frame.get_by_role("button", name="Refresh").click()
        frame.wait_for_function("([el, t]) => el.textContent !== t", arg=[updated.element_handle(), before])
        assert regex.input_value() == "^" + re.escape(target) + "$"
        assert frame.locator(".ld-card").count() == 1
        assert target_card.locator(".ld-card-head").get_attribute("aria-expanded") == "true"
        assert target_head.get_attribute("aria-expanded") == "true"

        # The reader's own choices win over the defaults across a refresh: a healthy card
        # (closed by default) that was opened stays open, an error card that was closed stays closed.
        regex.fill("")
        frame.wait_for_function("n => document.querySelectorAll('.ld-card').length === n", arg=total)
        healthy_head = _card(frame, "healthy").locator(".ld-card-head")
        assert healthy_head.get_attribute("aria-expanded") == "true"  # opened by a click above
        error_head = _card(frame, "diverging").locator(".ld-card-head")
        assert error_head.get_attribute("aria-expanded") == "true"
        error_head.click()
        before = updated.inner_text()
        page.wait_for_timeout(1100)
        frame.get_by_role("button", name="Refresh").click()
        frame.wait_for_function("([el, t]) => el.textContent !== t", arg=[updated.element_handle(), before])
        assert healthy_head.get_attribute("aria-expanded") == "true"
        assert error_head.get_attribute("aria-expanded") == "false"

        # A live run goes NaN: after a refresh its card is marked new, and the titles count the
        # runs that newly turned error since the page was loaded.
        assert frame.locator(".ld-new:visible").count() == 0
        assert not re.match(r"\(\d+\) ", page.title())
        since = _card(frame, "overfitting").locator(".ld-since").inner_text()
        assert re.fullmatch(r"since step [\d,]+ · \d+ evaluations?", since), since
        _append_nan(base, logdir, "healthy_torchstyle")
        deadline = time.time() + 60
        while get_json(base + "/data/plugin/lossdoctor/report?run=healthy_torchstyle")["runs"][0]["status"] != "error":
            assert time.time() < deadline, "TensorBoard never picked up the NaN"
            time.sleep(0.5)
        frame.get_by_role("button", name="Refresh").click()
        mark = _card(frame, "healthy_torchstyle").locator(".ld-new")
        mark.wait_for(state="visible", timeout=20000)
        assert "converged" in mark.inner_text() and "nan" in mark.inner_text(), mark.inner_text()
        assert frame.locator(".ld-new:visible").count() == 1
        assert page.title().startswith("(1) ") and frame.evaluate("document.title").startswith("(1) ")

        regex.fill("(unclosed")
        error = frame.locator("#ld-filter-error")
        error.wait_for(state="visible")
        assert error.inner_text().strip()
        assert regex.get_attribute("aria-invalid") == "true"
        assert frame.locator(".ld-card").count() == total  # an invalid filter hides nothing
        regex.fill("")

        # The hostile run name is text, never markup.
        card = _card(frame, HOSTILE)
        assert card.count() == 1
        assert card.locator(".ld-run").inner_text() == HOSTILE
        _ensure_open(card)
        assert frame.locator('img[src="x"]').count() == 0
        assert page.locator('img[src="x"]').count() == 0
        assert frame.evaluate("document.querySelectorAll('img').length") == 0
        page.wait_for_timeout(500)
        assert dialogs == [], f"a dialog fired: {dialogs}"
        assert page_errors == [], f"uncaught errors in the page: {page_errors}"
    finally:
        context.close()


def test_tab_under_a_path_prefix(browser, tmp_path):
    """`tensorboard --path_prefix`: the tab loads, its report and chart requests stay under the
    prefix (relative URLs), and a chart draws."""
    src, expected = _logs_and_expected()
    logdir = tmp_path / "logs"  # a copy: TensorBoard's log file is written beside the logdir
    shutil.copytree(src, logdir)
    prefix = "/tb/team"
    want = set(expected)
    args = ["--samples_per_plugin", "scalars=0", "--load_fast", "true"]
    ready = lambda r: want <= {x["run"] for x in r["runs"]}  # noqa: E731
    with running_tensorboard(logdir, args, ready, path_prefix=prefix) as (base, _, _):
        context = browser.new_context(viewport={"width": 1280, "height": 960})
        page = context.new_page()
        requests: list = []
        page.on("request", lambda req: requests.append(req.url))
        try:
            page.goto(base + "/#lossdoctor", wait_until="domcontentloaded")
            frame = plugin_frame(page)
            worst = frame.locator(".ld-card").first
            _ensure_open(worst)
            head = worst.locator(".ld-finding-head").first
            if head.get_attribute("aria-expanded") != "true":
                head.click()
            canvas = worst.locator(".ld-finding").first.locator("canvas").first
            canvas.wait_for(state="visible", timeout=20000)
        finally:
            context.close()
    ours = [u for u in requests if "/plugin/lossdoctor/" in u]
    assert any(u.split("?")[0].endswith("/report") for u in ours)
    assert any("/series?" in u for u in ours)
    outside = [u for u in ours if not u.startswith(base + "/")]
    assert not outside, f"requests that left the path prefix: {outside}"


def test_single_run_logdir_named_sampling_limit_stated_and_eval_metrics_unlabelled(browser, tmp_path):
    """TensorBoard pointed at one run folder (the run group "."), started with its own sample
    budget: the card is named after the folder, the notice states the limit in force, and an
    evaluation metric with no split word is not labelled as a training curve."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir = tmp_path / "my_experiment"
    writer = EventFileWriter(str(logdir))
    for step in range(120):
        values = {"train_loss": 0.2 + 2 * 0.96**step, "metrics/mAP50(B)": 0.8 - 0.7 * 0.96**step}
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values.items()])
        writer.add_event(event_pb2.Event(wall_time=1_700_000_000.0 + step, step=step, summary=summary))
    writer.close()
    args = ["--samples_per_plugin", "scalars=50", "--load_fast", "false"]
    with running_tensorboard(logdir, args, lambda r: len(r["runs"]) == 1) as (base, _, _):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            page.goto(base + "/#lossdoctor", wait_until="domcontentloaded")
            frame = plugin_frame(page)
            assert frame.locator(".ld-card .ld-run").first.inner_text() == "my_experiment (the logdir itself)"
            notice = frame.locator(".ld-notice", has_text="samples_per_plugin").first
            notice.wait_for(state="visible")
            assert "at most 50 points per scalar tag" in notice.inner_text() and "may be sampled" in notice.inner_text()
            card = frame.locator(".ld-card").first
            _ensure_open(card)
            curves = card.locator(".ld-series-list").inner_text()
            assert "metrics/mAP50(B)" in curves and "mAP50(B) (train)" not in curves, curves
            assert "train_loss (train)" in curves
        finally:
            context.close()


def test_chart_draws_validation_logged_at_the_epoch_on_the_training_steps(browser, tmp_path):
    """Training logged per batch (global step), validation per epoch (the epoch number): the
    chart asks for the validation curve on the training curve's axis and gets its points at
    the batches each evaluation followed, as the finding quotes them."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir = tmp_path / "logs" / "custom_loop"
    writer = EventFileWriter(str(logdir))
    batches_per_epoch, wall = 50, 1_700_000_000.0

    def write(tag, step, value):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        writer.add_event(event_pb2.Event(wall_time=wall, step=step, summary=summary))

    for epoch in range(12):
        for b in range(batches_per_epoch):
            step = epoch * batches_per_epoch + b
            wall += 0.2
            write("train/loss", step, 0.3 + 2.0 * 0.993**step)
        wall += 1.0
        write("val/loss", epoch, 0.6 + 1.6 * 0.7**epoch + 0.03 * max(epoch - 5, 0))
    writer.close()
    args = ["--samples_per_plugin", "scalars=0", "--load_fast", "false"]
    with running_tensorboard(logdir.parent, args, lambda r: len(r["runs"]) == 1) as (base, _, _):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        series_answers: list = []
        page.on("response", lambda r: series_answers.append(r) if "/series?" in r.url else None)
        try:
            page.goto(base + "/#lossdoctor", wait_until="domcontentloaded")
            frame = plugin_frame(page)
            card = frame.locator(".ld-card").first
            _ensure_open(card)
            assert "epochs next to batches" in card.locator(".ld-series-list").inner_text()
            head = card.locator(".ld-finding-head").first
            if head.get_attribute("aria-expanded") != "true":
                head.click()
            card.locator(".ld-finding").first.locator("canvas").first.wait_for(state="visible", timeout=20000)
            val = [r for r in series_answers if "tag=val%2Floss" in r.url]
            assert val and "axis_tag=train%2Floss" in val[-1].url, [r.url for r in series_answers]
            steps = val[-1].json()["steps"]
            # Evaluation k follows batch (k + 1) * 50 - 1: on the training axis, not at 0..11.
            assert steps[-1] >= 11 * batches_per_epoch and steps[1] >= batches_per_epoch - 1, steps
        finally:
            context.close()
