"""The convert tests' fixtures: the shared converted dataset (see ``tests.convert.datasets``)."""

from tests.convert.datasets import converted, dataset_copy

__all__ = ["converted", "dataset_copy"]
