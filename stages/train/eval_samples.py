"""An evaluation's per-sample output: each scored generation as one JSON line, written as it
is scored (so a resumed evaluation skips what is done), with the generated solid drawn in the
views its reference was drawn in, beside the dataset's own images.

``OUTPUT/samples.jsonl`` holds one row per record: the record and model id, the generated
code, its scores and error, and the file names of the reference views (in the dataset's
``images/``) and of the generated solid's views (in ``OUTPUT/images/``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stages.dataset.layout import COMPOSITE
from stages.render.views import VIEWS

SAMPLES_FILE = "samples.jsonl"
IMAGES = "images"
_IMAGE_NAME = re.compile(rf"^(?P<model>.+)_(?P<view>{'|'.join([*VIEWS, COMPOSITE])})\.png$")


def reference_views(images_dir: Path, image: Path) -> tuple[str, dict[str, str]]:
    """The model a record's image shows, and every single view of it the dataset holds."""
    match = _IMAGE_NAME.fullmatch(image.name)
    model_id = match["model"] if match else image.stem
    found = {
        view: f"{model_id}_{view}.png"
        for view in VIEWS
        if (images_dir / f"{model_id}_{view}.png").is_file()
    }
    return model_id, found


def record_view(image: Path) -> str | None:
    """The view a record's image is of (``composite`` for a composite), if its name says."""
    match = _IMAGE_NAME.fullmatch(image.name)
    return match["view"] if match else None


class SampleLog:
    """``samples.jsonl``, appended one flushed line per sample."""

    def __init__(self, output: Path) -> None:
        self.path = output / SAMPLES_FILE
        self.images = output / IMAGES

    def done_rows(self) -> list[dict[str, Any]]:
        """Rows an earlier attempt completed (a torn last line is dropped and rewritten)."""
        if not self.path.is_file():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "id" in row:
                rows.append(row)
        self.path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return rows

    def start_fresh(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
            f.flush()


def draw_generated(
    renderer: Any, code: str, images: Path, stem: str, views: list[str], resolution: int
) -> dict[str, str]:
    """The generated program's solid drawn in ``views``; ``{}`` when it does not build."""
    from stages.cad.model import CadError
    from stages.cad.openecad.answer import unwrap_answer
    from stages.cad.openecad.interpreter import parse_code
    from stages.cad.solid import BUILD_TIME_LIMIT_S, build_solid
    from stages.render.single import draw_solid

    if not views:
        return {}
    try:
        model = parse_code(unwrap_answer(code), "generated")
        solid = build_solid(model, time_limit=BUILD_TIME_LIMIT_S)
    except CadError:
        return {}
    try:
        paths = draw_solid(renderer, solid, images, stem, views, resolution)
    except Exception:  # a solid the renderer cannot draw is still scored; it has no views
        return {}
    return {view: path.name for view, path in paths.items()}
