"""Running ``python -m stages.extract`` as the server does, and reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.cad.deepcad import load_deepcad
from stages.cad.key import geometric_key
from stages.cad.solid import build_solid
from tests.conftest import REPO_ROOT

STAGE_TIMEOUT_S = 120


@dataclass
class StageRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    @property
    def result(self) -> dict[str, Any]:
        (result,) = self.of("result")
        return result


def stage_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DEEPCAD_ROOT"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def extract_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "stages.extract", "--progress", "json", *args]


def run_extract(*args: str) -> StageRun:
    done = subprocess.run(
        extract_command(*args),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=stage_env(),
        timeout=STAGE_TIMEOUT_S,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return StageRun(done.returncode, events, done.stderr)


def read_split(dataset: Path) -> dict[str, list[str]]:
    return json.loads((dataset / "split.json").read_text())


def model_file(dataset: Path, model_id: str) -> Path:
    return dataset / "cad_json" / model_id[:4] / f"{model_id}.json"


def keys_of(dataset: Path, ids: list[str]) -> set[str]:
    """Geometric keys of written models, computed here independently of the stage."""
    return {geometric_key(build_solid(load_deepcad(model_file(dataset, i)))) for i in ids}


def assert_models_json_matches(dataset: Path) -> None:
    """``models.json`` lists every written model on its split with the volume, solids and key
    that building the written file gives here."""
    facts = json.loads((dataset / "models.json").read_text())
    split = read_split(dataset)
    assert list(facts) == split["train"] + split["validation"]
    for side, ids in split.items():
        for model_id in ids:
            solid = build_solid(load_deepcad(model_file(dataset, model_id)))
            assert facts[model_id] == {
                "split": side,
                "volume": solid.volume,
                "solids": solid.num_solids,
                "key": geometric_key(solid),
            }
