"""htrain: the experiment runner (data, models, training loop, run outputs).

The spectral math lives in ``heavytail``; this package is the torch side that feeds it.
"""
