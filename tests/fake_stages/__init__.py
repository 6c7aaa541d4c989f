"""Test-only stages for the server's tests: ``fake`` and ``extract`` stand in for real work;
``hostinfo`` and ``extract.sources`` are the real request-time calls, so the server's one
``stages_package`` setting serves every process it starts."""
