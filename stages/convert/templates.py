"""Prompt wordings for the human turn, one set per image layout.

OpenECAD's own three prompts are kept verbatim (the first and third describe one view "from a
certain angle", which is our ``iso`` image; the second describes its 2x2 sheet of an
isometric and three orthographic views, our ``composite``). ``per_view`` images show one named
orthographic view, so their wordings say which. Varying the wording keeps a fine-tuned model
from keying on one sentence; the first wording of each set is the default when templates are
not randomised. A prompt is the text after the human turn's ``<image>`` line (see
``stages.dataset.records``).
"""

from __future__ import annotations

import hashlib

OPENECAD_PROMPTS = (
    "This image is a view of a 3D model from a certain angle. "
    "Please try to use OpenECAD-style API to render this model.",
    "This image contains 4 views of a 3D model from a certain angle and three orthographic "
    "views. Please try to use OpenECAD-style API to render this model.",
    "This image shows a view of a 3D model from a certain angle. "
    "Please use Python-style APIs to render this model.",
)

# ``{view}`` is replaced by the view's name ("front", "top", ...).
PER_VIEW_TEMPLATES = (
    "This image is the {view} view of a 3D model. "
    "Please try to use OpenECAD-style API to render this model.",
    "This image shows the {view} view of a 3D model. "
    "Please use Python-style APIs to render this model.",
    "Here is the orthographic {view} view of a mechanical part. "
    "Write OpenECAD-style Python code that builds this part.",
    "The picture is a {view} projection of a CAD model. "
    "Reconstruct the model with OpenECAD-style API calls.",
    "Looking at this {view} view of a 3D part, write the OpenECAD-style code "
    "of its sketches and extrusions.",
    "This {view} orthographic drawing shows a 3D model. "
    "Please recreate the model using OpenECAD-style Python API.",
    "Given the {view} view of this CAD part, generate the OpenECAD-style code that models it.",
    "Below is a {view} view of a mechanical component. "
    "Use OpenECAD-style API to write the code that renders this model.",
)

ISO_TEMPLATES = (
    OPENECAD_PROMPTS[0],
    OPENECAD_PROMPTS[2],
    "Here is an isometric view of a mechanical part. "
    "Write OpenECAD-style Python code that builds this part.",
    "The picture shows a 3D CAD model from an oblique angle. "
    "Reconstruct the model with OpenECAD-style API calls.",
    "Looking at this 3D view of a part, write the OpenECAD-style code "
    "of its sketches and extrusions.",
    "This image is an isometric rendering of a 3D model. "
    "Please recreate the model using OpenECAD-style Python API.",
    "Given this view of a CAD part from a certain angle, generate the OpenECAD-style code "
    "that models it.",
    "Below is a 3D view of a mechanical component. "
    "Use OpenECAD-style API to write the code that renders this model.",
)

COMPOSITE_TEMPLATES = (
    OPENECAD_PROMPTS[1],
    "This image shows 4 views of a 3D model: one from a certain angle and the front, top "
    "and right orthographic views. Please use Python-style APIs to render this model.",
    "Here are an isometric view and three orthographic views of a mechanical part. "
    "Write OpenECAD-style Python code that builds this part.",
    "The picture holds four views of one CAD model (isometric, front, top and right). "
    "Reconstruct the model with OpenECAD-style API calls.",
    "Looking at these four views of a 3D part, write the OpenECAD-style code "
    "of its sketches and extrusions.",
    "This sheet shows a 3D model from a certain angle and in three orthographic views. "
    "Please recreate the model using OpenECAD-style Python API.",
    "Given the isometric, front, top and right views of this CAD part, generate the "
    "OpenECAD-style code that models it.",
    "Below are four views of a mechanical component. "
    "Use OpenECAD-style API to write the code that renders this model.",
)

TEMPLATES: dict[str, tuple[str, ...]] = {
    "per_view": PER_VIEW_TEMPLATES,
    "iso": ISO_TEMPLATES,
    "composite": COMPOSITE_TEMPLATES,
}


def template_index(count: int, seed: int, record_id: str) -> int:
    """A wording index fixed by ``seed`` and the record's id alone, so the choice does not
    depend on worker count or record order (Python's ``hash`` is salted per process)."""
    digest = hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def prompt_text(layout: str, view: str, *, randomize: bool, seed: int, record_id: str) -> str:
    """The prompt (without the ``<image>`` line) for one record."""
    try:
        templates = TEMPLATES[layout]
    except KeyError:
        raise ValueError(f"unknown layout {layout!r} (known: {', '.join(TEMPLATES)})") from None
    index = template_index(len(templates), seed, record_id) if randomize else 0
    return templates[index].format(view=view)
