"""Adapters to training frameworks, each an optional extra (``pip install heavytail[lightning]``).

The library itself needs only numpy, scipy and pandas; nothing here is imported by it.
"""
