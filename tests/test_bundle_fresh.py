"""The committed bundle (tb_lossdoctor/static/) is what frontend/ builds to."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"


def test_committed_bundle_matches_a_fresh_build():
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("CI"):
            pytest.fail("npm is required in CI to check the committed bundle")
        pytest.skip("npm is not installed")
    if not (FRONTEND / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True,
                       capture_output=True, timeout=600)
    result = subprocess.run([npm, "run", "check"], cwd=FRONTEND, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, (
        "the committed tb_lossdoctor/static/ is stale or the build fails: run "
        "`cd frontend && npm run build` and commit it\n" + result.stdout[-2000:] + result.stderr[-2000:]
    )
