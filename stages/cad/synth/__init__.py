"""The synthetic DeepCAD-format model generator: the project's embedded default data source.

``generator`` draws, gates and writes models (``generate_models``, ``write_dataset``);
``variety`` holds the knobs (``Variety``, ``DEFAULT_VARIETY``, ``FAMILIES``). A part is drawn by
a family (``parts_flat``, ``parts_solid``) with ``shapes`` and ``spacing`` as a ``design``,
re-expressed by ``quirks``, written by ``deepcad_json``, checked by ``slivers`` and ``gates``,
and laid out on disk by ``deepcad_layout``.
"""

from stages.cad.synth.generator import (
    candidate_seed,
    draw_design,
    generate_model,
    generate_models,
    write_dataset,
)
from stages.cad.synth.variety import DEFAULT_VARIETY, FAMILIES, Variety

__all__ = [
    "DEFAULT_VARIETY",
    "FAMILIES",
    "Variety",
    "candidate_seed",
    "draw_design",
    "generate_model",
    "generate_models",
    "write_dataset",
]
