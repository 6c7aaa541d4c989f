"""Test-only stages for the server's tests: ``fake``, ``extract``, ``render`` and ``convert``
stand in for real work; ``train`` is the real training stage that a test can hold at a step;
``hostinfo``, ``extract.sources`` and ``train.preflight`` are the real request-time calls, so
the server's one ``stages_package`` setting serves every process it starts."""
