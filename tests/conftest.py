"""Shared test fixtures. The real DeepCAD samples live beside the repository in ../shared/."""

from __future__ import annotations

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
