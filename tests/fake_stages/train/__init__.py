"""The real training stage, which a test can hold at one optimizer step (``__main__``), beside
the real request-time preflight."""
