"""Validation of TinyLLaVA records: every record, every image, every answer.

``python -m stages.validate`` checks a converted dataset folder and writes
``validation.json``; ``python -m stages.validate.pair`` checks one record. Bad data is reported
in the result, never by failing the job.
"""
