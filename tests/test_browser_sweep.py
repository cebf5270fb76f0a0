"""End to end: "Across runs" in the Diagnosis tab of a real `tensorboard`, in headless Chromium.

TensorBoard serves a copy of demo/sweeps plus a three-run sweep whose recorded optimiser value is
an HTML injection attempt. The test checks that the tab's table and sentences are the report's
(same counts per value and verdict, same sentences), that clicking a count, a value or a finding
narrows the cards to exactly those runs and "Show all runs" brings them back, and that the hostile
value is shown as text (no element, no dialog).

Needs the package installed (`pip install -e . --no-deps`), Playwright and Debian's Chromium at
/usr/bin/chromium; skips without them, except under CI=true.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import SimpleValueWriter
from tensorboard_process import plugin_frame, running_tensorboard

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
HOSTILE = "<img src=x onerror=alert(1)>"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytestmark = pytest.mark.timeout(300)


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


def _hostile_sweep(logdir: Path) -> None:
    """Three runs of one recipe; two record the optimiser as an HTML injection attempt."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import summary_v2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for i, (opt, rate) in enumerate([(HOSTILE, 0.9), (HOSTILE, 0.9), ("Adam", 0.95)]):
        run = logdir / "xss" / f"trial{i}"
        values = [2.0 * rate ** s + 0.1 for s in range(80)]
        if opt == HOSTILE:  # these two diverge after step 40
            values = values[:40] + [values[39] * 1.05 ** (s - 39) for s in range(40, 80)]
        SimpleValueWriter(run).add("train_loss", values).close()
        writer = EventFileWriter(str(run), filename_suffix=".hparams")
        writer.add_event(event_pb2.Event(wall_time=1.7e9, step=0, summary=summary_v2.hparams_pb({"optimizer": opt})))
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
def served(request, tmp_path_factory):
    src = ROOT / "demo" / "sweeps"
    if not any(src.rglob("events.out.tfevents*")):
        _unavailable("demo/sweeps has not been generated")
    logdir = tmp_path_factory.mktemp("sweep_e2e") / "logs"
    shutil.copytree(src, logdir)
    _hostile_sweep(logdir)
    args = ["--samples_per_plugin", "scalars=0", "--reload_interval", "2", "--load_fast", request.param]

    def ready(report):
        sweep = report.get("sweep") or {}
        return len(sweep.get("families", [])) == 3

    with running_tensorboard(logdir, args, ready) as (base, _, report):
        yield base, report


def _shown_runs(frame) -> set:
    return set(frame.locator(".ld-card").evaluate_all("els => els.map(e => e.dataset.run)"))


def test_across_runs_table_filters_the_cards(browser, served):
    base, report = served
    sweep = report["sweep"]
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, color_scheme="light")
    page = context.new_page()
    dialogs: list = []
    errors: list = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(base + "/#lossdoctor", wait_until="domcontentloaded")
        frame = plugin_frame(page)
        frame.wait_for_selector(".ld-sweep:not([hidden]) .ld-sweep-table")
        all_runs = {r["run"] for r in report["runs"]}
        frame.wait_for_function(f"document.querySelectorAll('.ld-card').length === {len(all_runs)}")
        assert _shown_runs(frame) == all_runs

        # The tab says what the JSON says: the sentences, and each table's counts.
        texts = frame.locator(".ld-sweep-findings li").evaluate_all(
            "els => els.map(e => e.firstChild.textContent)")
        assert texts == [f["text"] for f in sweep["findings"]]
        tables = frame.locator(".ld-sweep-table")
        assert tables.count() == len(sweep["families"])
        for i, family in enumerate(sweep["families"]):
            rows = tables.nth(i).locator("tbody tr").evaluate_all(
                "trs => trs.map(tr => [...tr.children].map(c => c.textContent))")
            table = family["table"]
            want = [[f"{r['hyperparameter']} = {r['label']}"]
                    + [str(len(r["cells"][o])) if o in r["cells"] else "" for o in table["outcomes"]]
                    for r in table["rows"]]
            assert rows == want
            head = tables.nth(i).locator("thead th").all_inner_texts()
            assert head[1:] == table["outcomes"]

        # A count: the cards narrow to those runs (Keras sweep, lr = 0.3, oscillation).
        fam = next(i for i, f in enumerate(sweep["families"]) if f["name"] == "keras_lr_optimizer/")
        row = next(j for j, r in enumerate(sweep["families"][fam]["table"]["rows"])
                   if r["hyperparameter"] == "lr" and r["label"] == "0.3")
        cell = frame.locator(f'button[data-key="t{fam}.{row}.oscillation"]')
        cell.click()
        want = set(sweep["families"][fam]["table"]["rows"][row]["cells"]["oscillation"])
        assert want == {"keras_lr_optimizer/run-2", "keras_lr_optimizer/run-6"}
        frame.wait_for_function("document.querySelectorAll('.ld-card').length === 2")
        assert _shown_runs(frame) == want
        assert cell.get_attribute("aria-pressed") == "true"
        assert "Showing the 2 runs of lr = 0.3: oscillation" in frame.locator(".ld-sweep-active").inner_text()
        assert frame.locator(".ld-shown").inner_text().startswith("Showing 2 of")

        # A finding: the runs behind it.
        finding = next(i for i, f in enumerate(sweep["findings"]) if f["text"].startswith("All 3 runs with lr = 0.9"))
        frame.locator(f'button[data-key="f{finding}"]').click()
        behind = set(sweep["findings"][finding]["runs"])
        frame.wait_for_function(f"document.querySelectorAll('.ld-card').length === {len(behind)}")
        assert _shown_runs(frame) == behind
        assert cell.get_attribute("aria-pressed") == "false"

        # A value, then the same value again: the second click clears it.
        value = frame.locator(f'button[data-key="t{fam}.{row}"]')
        value.click()
        frame.wait_for_function("document.querySelectorAll('.ld-card').length === 2")
        value.click()
        frame.wait_for_function(f"document.querySelectorAll('.ld-card').length === {len(all_runs)}")

        # "Show all runs" after a selection.
        cell.click()
        frame.wait_for_function("document.querySelectorAll('.ld-card').length === 2")
        frame.get_by_role("button", name="Show all runs").click()
        frame.wait_for_function(f"document.querySelectorAll('.ld-card').length === {len(all_runs)}")
        assert frame.locator(".ld-sweep-active").is_hidden()

        # The hostile recorded value is text.
        hostile_rows = frame.locator(".ld-sweep-table tbody th").all_inner_texts()
        assert f"optimizer = {HOSTILE}" in hostile_rows
        assert frame.locator(".ld-sweep img, .ld-root img").count() == 0
        assert dialogs == [] and errors == []
    finally:
        context.close()
