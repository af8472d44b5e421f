"""What participants import: data, models, the training recipe, baselines and evaluation.

The kit reads a split directory written by ``data_prep`` and never writes into it.
"""

__version__ = "0.1.0"
