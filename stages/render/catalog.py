"""Which models a render run covers: the JSON files under ``DIR/cad_json/``, by model id.

A model id is the file's stem (``cad_json/0000/00000007.json`` is ``00000007``), as the
DeepCAD parser names models; images are named after it. Ids may be asked for as ``0000/00000007``
too (the split file's form): only the last part counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stages.dataset.layout import MODELS_FOLDER, normalise_id


@dataclass(frozen=True, slots=True)
class Catalog:
    """Models found, plus what could not be used: ids asked for but absent, repeated stems."""

    models: dict[str, Path]
    missing: tuple[str, ...] = ()
    duplicates: tuple[Path, ...] = ()


def read_id_list(path: Path) -> list[str]:
    """Model ids from a file: one per line or comma separated; ``#`` starts a comment."""
    ids: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0]
        ids.extend(part for part in (p.strip() for p in line.split(",")) if part)
    return ids


def find_models(dataset_dir: Path, only: Iterable[str] | None = None) -> Catalog:
    """Every ``*.json`` under ``dataset_dir/cad_json`` (recursively), sorted by id.

    ``only`` restricts the run to those ids (in the order given); ids not found are listed in
    ``missing``. Raises FileNotFoundError when the models folder does not exist.
    """
    root = dataset_dir / MODELS_FOLDER
    if not root.is_dir():
        raise FileNotFoundError(f"no {MODELS_FOLDER}/ folder in {dataset_dir}")
    found: dict[str, Path] = {}
    duplicates: list[Path] = []
    for path in sorted(root.rglob("*.json")):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.stem in found:
            duplicates.append(path)
        else:
            found[path.stem] = path
    if only is None:
        models = dict(sorted(found.items()))
        missing: tuple[str, ...] = ()
    else:
        wanted = list(dict.fromkeys(normalise_id(i) for i in only if i.strip()))
        models = {i: found[i] for i in wanted if i in found}
        missing = tuple(i for i in wanted if i not in found)
    repeated = tuple(path for path in duplicates if path.stem in models)
    return Catalog(models, missing=missing, duplicates=repeated)
