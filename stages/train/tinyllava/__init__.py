"""TinyLLaVA / OpenECAD checkpoints, loaded natively: no remote code, no network.

TinyLLaVA's ``tinyllava`` model type is not part of transformers, its own code pins old library
versions, and its config names other hub models to fetch while loading. This package reads such
a checkpoint directory as it lies on disk and rebuilds the model from its ``config.json``:

- ``config``: the checkpoint's config.json, checked, as typed values
- ``openelm``: the OpenELM decoder (OpenECAD's 0.89B) in plain torch
- ``decoders``: OpenELM plus Llama, Qwen2, Phi and Gemma through transformers' own classes
- ``vision``: the SigLIP tower with TinyLLaVA's feature layer and patch selection
- ``connector``: the MLP between them
- ``model``: the VLM (image features merged at the -200 placeholders, loss)
- ``weights``: strict loading and saving by TinyLLaVA's parameter names
- ``tokenizer`` and ``chat``: the tokenizer files and TinyLLaVA's chat template
- ``generate``: greedy decoding with a key/value cache, stopping at the end token
- ``loader``: all of the above as the training module's ``VlmBundle``
- ``merge``: a trained adapter merged back into a TinyLLaVA checkpoint
"""
