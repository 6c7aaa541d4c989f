"""The hard quality gates every synthetic model passes before it is written.

A model must parse as DeepCAD JSON, have no sliver features, build into one watertight solid
with positive volume that fills a sane share of its box, and yield a geometric key (the caller
keeps keys unique). A failure raises ``CadError`` whose ``reason`` says which gate refused it.
"""

from __future__ import annotations

import math
from typing import Any

from stages.cad.deepcad import parse_deepcad
from stages.cad.key import geometric_key
from stages.cad.model import CadError
from stages.cad.solid import build_solid
from stages.cad.synth.slivers import find_sliver
from stages.cad.synth.variety import Variety

# No wall-clock limit: a gate that depended on machine load would make the generated set
# differ between runs. Generated parts are bounded by DeepCAD's size limits (see Variety)
# and the builder's complexity caps, so they build in milliseconds anyway.
BUILD_TIME_LIMIT = math.inf
MIN_FILL_SHARE = 0.02  # a solid filling less of its box is a wisp, not a part


def gate_model(data: dict[str, Any], model_id: str, variety: Variety) -> str:
    """Check one generated model against every gate; return its geometric key."""
    model = parse_deepcad(data, model_id)
    sliver = find_sliver(model, variety.min_feature_share)
    if sliver:
        raise CadError("sliver", sliver)
    solid = build_solid(model, time_limit=BUILD_TIME_LIMIT, mesh_extras=False)
    if not solid.watertight:
        raise CadError("not_watertight", "the mesh has open or non-manifold edges")
    if not solid.volume > 0.0:
        raise CadError("no_volume", f"volume {solid.volume:.3g}")
    if solid.num_solids > variety.max_solids:
        raise CadError("too_many_solids", f"{solid.num_solids} solids")
    box = math.prod(float(v) for v in solid.bbox[1] - solid.bbox[0])
    if box > 0 and solid.volume / box < MIN_FILL_SHARE:
        raise CadError("sliver", f"the solid fills {solid.volume / box:.1%} of its box")
    return geometric_key(solid)
