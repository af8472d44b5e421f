"""The sealed scorer: ingestion runs submissions, scoring turns their outputs into a score.

``scoring.metric.forgetting`` is the official metric as pure functions on arrays; it knows nothing
about models, files or torch. ``python -m scoring ...`` is the command line.
"""
