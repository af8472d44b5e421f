"""The sealed scorer: ingestion runs submissions, scoring turns their outputs into a score.

The folder is the architecture. Subpackages, in the order data flows (each imports only
from those above it; ``tests/test_architecture.py`` enforces it):

- ``checks``: every input check, one-line ValueErrors naming the argument;
- ``record/``: score.json's one typed definition, its JSON Schema, who may see each field;
- ``metric/``: the official metric, pure functions on arrays (no models, files or torch);
- ``outputs``: what the scorer keeps of a model (forget-set confidences, three accuracies);
- ``backends/``: where expensive tasks run (this machine or a Ray cluster);
- ``references/``: reference models retrained from scratch, their folder, the calibration;
- ``ingestion/``: a submission run N times in a sealed worker, its models handed back;
- ``assess/``: what is reported beside the score (intervals, ceiling, diagnostics, auxiliary metrics);
- ``html/``: the pages people look at (report.html, leaderboard.html);
- ``score``: one submission scored into a folder (score.json, arrays, report);
- ``ranking/``: scores ranked into a leaderboard, and what is published;
- ``bench/``: the scorer checking itself (baseline zoo, sanity rows, CIFAR rehearsal);
- ``hosting/``: the challenge on Codabench;
- ``cli/``: ``python -m scoring ...``, the whole command line (``parser``, ``handlers``, ``main``).
"""
