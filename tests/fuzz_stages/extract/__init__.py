"""A job stand-in beside the real request-time calls of this stage."""
