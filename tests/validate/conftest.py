"""The validate tests' fixtures: the converted dataset the convert tests also use (made by
``tests.convert.datasets``), and copies of it to corrupt."""

from tests.convert.datasets import converted, dataset_copy

__all__ = ["converted", "dataset_copy"]
