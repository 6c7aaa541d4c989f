"""Shared test fixtures. The real DeepCAD samples live beside the repository in ../shared/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
DEEPCAD_SAMPLES = SHARED / "deepcad_samples"
OPENECAD_GOLDEN = SHARED / "openecad_golden"


@pytest.fixture(scope="session")
def deepcad_samples() -> Path:
    if not DEEPCAD_SAMPLES.is_dir():
        pytest.fail(f"missing {DEEPCAD_SAMPLES}: tests need ../shared beside the repository")
    return DEEPCAD_SAMPLES


@pytest.fixture(scope="session")
def openecad_golden() -> Path:
    return OPENECAD_GOLDEN


def run_json_module(module: str, *args: str) -> tuple[int, dict]:
    """Run ``python -m module args``; its exit code and the last JSON line it printed."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else {}
