"""A README figure: a few models' rendered views beside the OpenECAD code that answers them.

.venv/bin/python scripts/views_and_code.py [--samples DIR] [--ids 00000007,...]
    [--output docs/views_and_code.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image, ImageDraw  # noqa: E402

DEFAULT_SAMPLES = REPO.parent / "shared" / "deepcad_samples"
DEFAULT_OUTPUT = REPO / "docs" / "views_and_code.png"
DEFAULT_IDS = ("00000144", "00005081", "00633023")
VIEWS = ("front", "top", "right")
CELL = 200
LINE = 12
CODE_WIDTH = 760
MAX_CODE_LINES = 34


def panel(renderer, source: Path) -> Image.Image:
    from stages.cad.deepcad import load_deepcad
    from stages.cad.openecad import write_code
    from stages.render.task import load_solid

    views = renderer.render(load_solid(source, time_limit=10.0), VIEWS, CELL)
    code = write_code(load_deepcad(source)).expandtabs(4).splitlines()
    if len(code) > MAX_CODE_LINES:
        code = [*code[: MAX_CODE_LINES - 1], f"... ({len(code) - MAX_CODE_LINES + 1} more lines)"]
    height = max(CELL + 20, 20 + LINE * len(code) + 10)
    image = Image.new("L", (CELL * len(VIEWS) + CODE_WIDTH, height), 255)
    draw = ImageDraw.Draw(image)
    for index, view in enumerate(VIEWS):
        image.paste(Image.fromarray(views[view]).convert("L"), (index * CELL, 20))
        draw.text((index * CELL + 6, 4), f"{source.stem} {view}", fill=0)
    x = CELL * len(VIEWS) + 10
    for row, line in enumerate(code):
        draw.text((x, 6 + row * LINE), line, fill=0)
    draw.rectangle((0, 0, image.width - 1, image.height - 1), outline=200)
    return image


def main() -> int:
    from stages.render.renderer import OrthoRenderer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--ids", default=",".join(DEFAULT_IDS))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    sources = [args.samples / f"{model_id}.json" for model_id in args.ids.split(",")]
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        print(f"views_and_code: no such model: {', '.join(missing)}", file=sys.stderr)
        return 2
    with OrthoRenderer(CELL) as renderer:
        panels = [panel(renderer, source) for source in sources]
    figure = Image.new("L", (max(p.width for p in panels), sum(p.height for p in panels)), 255)
    y = 0
    for p in panels:
        figure.paste(p, (0, y))
        y += p.height
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.output, optimize=True)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
