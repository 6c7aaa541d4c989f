"""Stages for fuzzing the API (``tests/server/test_openapi_fuzz.py``): every request-time
call is the real stage (host probe, source check, single render, one pair, training
preflight), so what a request can make them do is tested for real; every job is ``job.py``,
a stand-in that accepts any arguments and ends within a second, so the fuzzer's jobs never
render, convert or train for real and never pile up."""
