"""Limits every stage applies when it builds a model (free of heavy imports, so any stage or
check can read them cheaply)."""

# Seconds one model may take to build: long enough for DeepCAD's most complex models, short
# enough that one pathological model cannot stall a stage.
BUILD_TIME_LIMIT_S = 5.0
