"""Training: LoRA fine-tuning of a LLaVA-family VLM on TinyLLaVA records.

``python -m stages.train`` runs the quick test-run or the full fine-tune (one loop,
``finetune.py``); ``python -m stages.train.preflight`` checks a request before a job starts.
Modules: config (knobs), devices, models + tiny (base models), tokenizer, prompt, data, lora,
checkpoint, summary (the verdict), plot (loss curve), synthetic (fixture datasets); the native
TinyLLaVA loader (``tinyllava/``) and generation scoring (``evaluate``) plug into ``models``.
"""
