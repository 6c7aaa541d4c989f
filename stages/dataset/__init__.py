"""A dataset on disk, and the formats the stages share through it.

``layout`` is where things are (no other module spells a dataset's file or folder names),
``manifest`` how far each stage got, ``model_facts`` what extraction measured of each model
(``models.json``), ``records`` the TinyLLaVA record format and ``tokens`` the answer's token
budget. Every stage and the server ask these modules; no stage reaches into another's.
"""
