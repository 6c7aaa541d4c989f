"""Tiny TinyLLaVA checkpoints shared by this folder's tests (written once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.train.tinyllava.checkpoints import write_checkpoint

CORPUS = [
    "SketchPlane0 = add_sketchplane(\n\torigin= [0., 0., 0.], normal= [0., 0., 1.])",
    "Loops0 = []\nCurves0_0 = []\nCircle0_0_0 = add_circle(center= [0., 0.], radius= 91.0485)",
    "Extrude0 = add_extrude(sketch= Sketch0,\n\toperation= 0, type= 0, extent_one= 25.4)",
    "This image is a view of a 3D model from a certain angle.",
] * 20


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may reach a model hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def openelm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Named like OpenECAD's release, so its system prompt applies."""
    return write_checkpoint(tmp_path_factory.mktemp("openelm") / "OpenECADv2-tiny", CORPUS)


@pytest.fixture(scope="session")
def checkpoint_for(tmp_path_factory: pytest.TempPathFactory):
    """A tiny checkpoint per decoder family (llama, qwen2, phi, gemma), written on first use."""
    written: dict[str, Path] = {}

    def get(decoder: str) -> Path:
        if decoder not in written:
            root = tmp_path_factory.mktemp(decoder)
            written[decoder] = write_checkpoint(root / f"TinyLLaVA-{decoder}", CORPUS, decoder)
        return written[decoder]

    return get
