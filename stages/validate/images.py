"""Does an image file exist and decode completely, and what size is it?

Decoding the whole image (not just its header) is what catches a truncated PNG: Pillow
reads the header of a cut file happily and fails only when the pixel data runs out.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True, slots=True)
class ImageCheck:
    """``error`` is ``image_missing`` or ``image_unreadable`` (with ``detail``), else None."""

    path: str
    size: tuple[int, int] | None = None
    error: str | None = None
    detail: str = ""


def check_image(path: str) -> ImageCheck:
    try:
        with Image.open(path) as image:
            image.load()
            return ImageCheck(path, size=image.size)
    except FileNotFoundError:
        return ImageCheck(path, error="image_missing", detail="no such file")
    except IsADirectoryError:
        return ImageCheck(path, error="image_missing", detail="a folder, not a file")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return ImageCheck(path, error="image_unreadable", detail=str(exc) or type(exc).__name__)
