"""The fake extract stage (``__main__``) beside the real request-time source check."""
