"""A real `tensorboard` process on 127.0.0.1 for the browser tests, and the tab's iframe."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Tuple

import pytest

REPORT = "/data/plugin/lossdoctor/report"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:  # loopback only
        return json.loads(r.read().decode("utf-8"))


@contextlib.contextmanager
def launched_tensorboard(
    logdir: Path, extra_args: Sequence[str] = (), *, path_prefix: str = ""
) -> Iterator[Tuple[subprocess.Popen, str, int, Path, float]]:
    """Start `tensorboard --logdir LOGDIR` (default backend) on a free loopback port; yield
    (process, base URL, port, its log file, monotonic start time) without waiting for anything.
    With `path_prefix` (TensorBoard's `--path_prefix`), the base URL includes it. The process
    is always stopped."""
    port = free_port()
    if path_prefix:
        extra_args = [*extra_args, "--path_prefix", path_prefix]
    log_path = Path(logdir).parent / f"tensorboard-{port}.log"
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
           "--host", "127.0.0.1", "--port", str(port), *extra_args]
    with open(log_path, "wb") as log:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        try:
            yield proc, f"http://127.0.0.1:{port}{path_prefix}", port, log_path, start
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def running_tensorboard(
    logdir: Path,
    extra_args: Sequence[str],
    ready: Callable[[dict], bool],
    *,
    timeout: float = 150.0,
    path_prefix: str = "",
) -> Iterator[Tuple[str, int, dict]]:
    """`launched_tensorboard`, yielding (base URL, port, first report for which `ready(report)`
    holds: TensorBoard loads in the background, so the first reports may be partial)."""
    with launched_tensorboard(logdir, extra_args, path_prefix=path_prefix) as (proc, base, port, log_path, _):
        deadline = time.time() + timeout
        report: Optional[dict] = None
        while True:
            if proc.poll() is not None:
                pytest.fail("tensorboard exited early:\n" + log_path.read_text(errors="replace")[-4000:])
            try:
                report = get_json(base + REPORT, timeout=30)
                if ready(report):
                    break
            except (urllib.error.URLError, ConnectionError, OSError, ValueError, KeyError):
                pass
            if time.time() > deadline:
                pytest.fail(f"the report never became ready; last: {str(report)[:2000]}\n"
                            + log_path.read_text(errors="replace")[-4000:])
            time.sleep(0.5)
        yield base, port, report


def plugin_frame(page, timeout: float = 60.0, shows: str = ".ld-card"):
    """The Diagnosis tab's iframe (data/plugin_entry.html?name=lossdoctor) once it shows a card
    (or what the `shows` selector names)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for frame in page.frames:
            if "plugin_entry.html" in frame.url and "lossdoctor" in frame.url:
                try:
                    frame.wait_for_selector(shows, timeout=2000)
                    return frame
                except Exception:
                    pass
        page.wait_for_timeout(250)
    raise AssertionError("the Diagnosis tab never showed %s; frames: %s" % (shows, [f.url for f in page.frames]))
