"""gs:// logdirs offline: the data server's own reason, fast, and no slow fallback through
TensorFlow's GCS filesystem (which retries DNS for about a minute)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from tb_lossdoctor.readers import data_server


def _no_network_prefix():
    """`unshare -rn` (a new user and network namespace: not even loopback) where the machine
    allows it; otherwise the command runs as is, on a machine that is expected to be offline."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=10).returncode == 0:
        return [unshare, "-rn"]
    return []


@pytest.fixture(scope="module")
def offline():
    try:
        data_server.server_binary_path()
    except data_server.DataServerError:
        pytest.skip("no TensorBoard data server binary (gs:// is read by the data server)")
    return _no_network_prefix()


def test_gcs_offline_fails_fast_with_the_data_servers_reason(offline, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_"))}
    env.update(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))  # no gcloud login
    start = time.monotonic()
    proc = subprocess.run(
        [*offline, sys.executable, "-m", "tb_lossdoctor", "gs://nonexistent-bucket-xyz/logs"],
        capture_output=True, text=True, timeout=90, env=env,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    # One line: no TensorFlow start-up noise (TensorFlow is never imported on this path).
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("lossdoctor: error: cannot read gs://nonexistent-bucket-xyz/logs: ")
    assert "the data server failed while loading: " in line
    assert "authentication" in line  # the server's reason, not a generic "cannot read"
    if offline:  # certainly no network: the reason is the name lookup
        assert "dns error" in line or "lookup" in line, line
    assert elapsed < 30, elapsed
