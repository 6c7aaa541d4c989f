"""TinyLLaVA training records from a rendered dataset: images plus OpenECAD v2 code answers.

``python -m stages.convert`` turns a whole dataset folder into ``train.json`` and ``val.json``;
``python -m stages.convert.pair`` makes one record for one model. The validate stage reads the
same folder layout (``dataset.py``) and the same length budget (``budget.py``).
"""
