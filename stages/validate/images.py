"""Does an image file exist, is it intact and does it decode completely, and what size is it?

Two passes, because each catches what the other misses. ``verify`` walks the file's structure
and checks every chunk's CRC: bytes overwritten inside a PNG's pixel data often still inflate
to pixels without a complaint, but never keep their checksum. ``load`` (on a fresh open, as
``verify`` leaves the image unusable) decodes every pixel: a cut file's header reads happily
and fails only when the pixel data runs out.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


@dataclass(frozen=True, slots=True)
class ImageCheck:
    """``error`` is ``image_missing``, ``image_corrupt`` (structure or checksums wrong) or
    ``image_unreadable`` (does not decode), with ``detail``; else None."""

    path: str
    size: tuple[int, int] | None = None
    error: str | None = None
    detail: str = ""


def check_image(path: str) -> ImageCheck:
    try:
        with Image.open(path) as image:
            image.verify()
    except FileNotFoundError:
        return ImageCheck(path, error="image_missing", detail="no such file")
    except IsADirectoryError:
        return ImageCheck(path, error="image_missing", detail="a folder, not a file")
    except DECODE_ERRORS as exc:
        return ImageCheck(path, error="image_corrupt", detail=_describe(exc))
    try:
        with Image.open(path) as image:
            image.load()
            return ImageCheck(path, size=image.size)
    except DECODE_ERRORS as exc:
        return ImageCheck(path, error="image_unreadable", detail=_describe(exc))


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
