"""TinyLLaVA's connector from vision features to the decoder's width.

``mlp2x_gelu`` (OpenECAD's) is Linear, exact-erf GELU, Linear, stored as
``connector._connector.{0,2}.*``; ``linear`` is one Linear (``connector._connector.*``).
"""

from __future__ import annotations

import re

from torch import Tensor, nn

from stages.train.tinyllava.config import CheckpointError

_MLP = re.compile(r"mlp(\d+)x_(gelu|relu)")
_ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


class Connector(nn.Module):
    def __init__(self, connector_type: str, vision_hidden: int, text_hidden: int) -> None:
        super().__init__()
        self._connector = build_projection(connector_type, vision_hidden, text_hidden)

    def forward(self, features: Tensor) -> Tensor:
        return self._connector(features)


def build_projection(connector_type: str, vision_hidden: int, text_hidden: int) -> nn.Module:
    if connector_type == "linear":
        return nn.Linear(vision_hidden, text_hidden)
    match = _MLP.fullmatch(connector_type)
    if match is None:
        raise CheckpointError(
            f"connector {connector_type!r} is not supported; use 'linear' or 'mlpNx_gelu'"
        )
    depth, activation = int(match.group(1)), _ACTIVATIONS[match.group(2)]
    modules: list[nn.Module] = [nn.Linear(vision_hidden, text_hidden)]
    for _ in range(1, depth):
        modules += [activation(), nn.Linear(text_hidden, text_hidden)]
    return nn.Sequential(*modules)
