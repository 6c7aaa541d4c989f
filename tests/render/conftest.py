"""Fixtures for the render tests: one renderer (one GL context) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stages.render.renderer import OrthoRenderer


@pytest.fixture(scope="session")
def renderer() -> Iterator[OrthoRenderer]:
    with OrthoRenderer(software_threads=1) as instance:
        yield instance
