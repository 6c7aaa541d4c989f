"""A contact sheet of the real DeepCAD samples as the render stage draws them, for the README.

Each cell is one model's 2x2 composite (iso, front / top, right) under its id; a model that
does not build gets a cell that says why. Reads ``../shared/deepcad_samples`` beside the
repository unless told otherwise and writes ``docs/contact_sheet.png``.

    .venv/bin/python scripts/contact_sheet.py [--samples DIR] [--output PNG] [--cell 320]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image, ImageDraw  # noqa: E402

from stages.render.composite import compose  # noqa: E402
from stages.render.views import COMPOSITE_VIEWS  # noqa: E402

DEFAULT_SAMPLES = REPO.parent / "shared" / "deepcad_samples"
DEFAULT_OUTPUT = REPO / "docs" / "contact_sheet.png"
CAPTION_HEIGHT = 22
INK = 0
PAPER = 255
RULE = 200


def render_cell(renderer, source: Path, cell: int) -> Image.Image:
    """The model's composite with its id above; or its id and the reason it does not build."""
    from stages.cad.model import CadError
    from stages.render.task import load_solid

    image = Image.new("L", (cell, cell + CAPTION_HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    try:
        solid = load_solid(source, time_limit=10.0)
    except CadError as exc:
        draw.text((8, CAPTION_HEIGHT + cell // 2 - 8), f"does not build: {exc.reason}", fill=INK)
    else:
        views = renderer.render(solid, COMPOSITE_VIEWS, cell)
        image.paste(Image.fromarray(compose(views, cell)).convert("L"), (0, CAPTION_HEIGHT))
    draw.text((8, 5), source.stem, fill=INK)
    draw.rectangle((0, 0, cell - 1, cell + CAPTION_HEIGHT - 1), outline=RULE)
    return image


def contact_sheet(sources: list[Path], cell: int, columns: int) -> Image.Image:
    from stages.render.renderer import OrthoRenderer

    rows = -(-len(sources) // columns)
    sheet = Image.new("L", (columns * cell, rows * (cell + CAPTION_HEIGHT)), PAPER)
    with OrthoRenderer(cell) as renderer:
        for index, source in enumerate(sources):
            row, column = divmod(index, columns)
            sheet.paste(
                render_cell(renderer, source, cell), (column * cell, row * (cell + CAPTION_HEIGHT))
            )
    return sheet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--cell", type=int, default=320, help="side of one model's cell, px")
    parser.add_argument("--columns", type=int, default=5)
    args = parser.parse_args()
    sources = sorted(args.samples.glob("*.json"))
    if not sources:
        print(f"contact_sheet: no *.json models in {args.samples}", file=sys.stderr)
        return 2
    sheet = contact_sheet(sources, args.cell, args.columns)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, optimize=True)
    print(f"wrote {args.output} ({len(sources)} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
