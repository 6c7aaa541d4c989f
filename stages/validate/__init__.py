"""Validation of TinyLLaVA records: every record, every image, every answer.

``python -m stages.validate`` checks a converted dataset folder and writes its validation
report; ``python -m stages.validate.pair`` checks one record. Bad data is reported in the
result, never by failing the job. The record format and the token budget it checks against
are the ones convert writes with (``stages.dataset.records``, ``stages.dataset.tokens``).
"""
