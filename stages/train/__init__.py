"""Training: LoRA fine-tuning of a LLaVA-family VLM on TinyLLaVA records.

``python -m stages.train`` runs the quick test-run or the full fine-tune (one loop,
``finetune.py``); ``python -m stages.train.preflight`` checks a request before a job starts.
Modules: config (knobs), devices, bundle (what a base model family hands the loop), models +
tiny (base models), tokenizer, prompt, data (records to DataLoaders), lora, optim (optimizer
and schedule), loss (batch and validation loss), metrics (metric events, throughput),
checkpoint, summary (the verdict), plot (loss curve), synthetic (fixture datasets); the native
TinyLLaVA loader (``tinyllava/``) returns a ``bundle``, registered in ``models``; generation
scoring is ``evaluate``.
"""
