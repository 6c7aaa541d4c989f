"""TinyLLaVA training records from a rendered dataset: images plus OpenECAD v2 code answers.

``python -m stages.convert`` turns a whole dataset folder into its train and val record files;
``python -m stages.convert.pair`` makes one record for one model (drawing its image through the
render stage's public ``render_model_views``). The record format and the answer's token budget
are shared with the validate stage: ``stages.dataset.records`` and ``stages.dataset.tokens``.
"""
