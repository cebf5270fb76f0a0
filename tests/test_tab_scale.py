"""The tab with 10,000 run groups stays responsive: it renders a first page of cards, not all of
them, filters the whole list at once, and loads more as the reader scrolls.

The bundle is served by frontend/dev/serve.py, which mimics TensorBoard's plugin iframe (same
`<base>`, a CSP like TensorBoard's) with a generated 10,000-group report: writing and loading
10,000 real runs would take minutes, and this measures the tab, not the backend (which
benchmarks/ measures). Times are printed, never asserted.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tensorboard_process import free_port
from test_browser_e2e import browser  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
GROUPS = 10_000


@pytest.fixture(scope="module")
def dev_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "frontend" / "dev" / "serve.py"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        proc.stdout.readline()  # it prints its address once listening
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_ten_thousand_run_groups(browser, dev_server):  # noqa: F811 (fixture)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        start = time.perf_counter()
        page.goto(dev_server + "/m/scale/")
        page.wait_for_selector(".ld-card", timeout=60_000)
        first_card = time.perf_counter() - start
        page.wait_for_function("() => /10,000 runs/.test(document.querySelector('.ld-shown').textContent)")
        rendered = page.locator(".ld-card").count()
        assert 0 < rendered <= 200, f"{rendered} cards rendered up front for {GROUPS} groups"

        # Filtering looks at all 10,000 groups, not only the rendered ones.
        start = time.perf_counter()
        page.fill("#ld-filter-regex", "trial_09999_")
        page.wait_for_function("() => document.querySelectorAll('.ld-card').length === 1")
        filtered = time.perf_counter() - start
        assert "trial_09999_" in page.locator(".ld-card").first.get_attribute("data-run")
        page.fill("#ld-filter-regex", "")
        page.wait_for_function(f"() => document.querySelectorAll('.ld-card').length === {rendered}")

        # Scrolling to the end of the list renders the next page.
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function(f"() => document.querySelectorAll('.ld-card').length > {rendered}", timeout=20_000)
        print(f"\n10,000 groups: first card {first_card:.2f} s, {rendered} cards rendered, "
              f"filter to one group {filtered:.2f} s")
    finally:
        page.close()


def test_runs_still_being_diagnosed_say_so_then_fill_in(browser, dev_server):  # noqa: F811 (fixture)
    """A partial first answer (the plugin's `partial=1` on a large logdir): the tab says how many
    runs are still being diagnosed, shows their cards as such, and asks again soon."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(dev_server + "/m/pending/")
        note = page.locator(".ld-pending-note")
        note.wait_for(state="visible", timeout=60_000)
        assert re.search(r"Diagnosing \d+ more runs?", note.inner_text()), note.inner_text()
        assert page.locator(".ld-card .ld-badge", has_text="Diagnosing").count() > 0
        assert "diagnosed" in page.locator(".ld-summary").inner_text()
        # The next poll (0.5 s later) brings the whole report: no pending card is left.
        page.wait_for_function("() => document.querySelector('.ld-pending-note').hidden", timeout=20_000)
        assert page.locator(".ld-card .ld-badge", has_text="Diagnosing").count() == 0
    finally:
        page.close()
