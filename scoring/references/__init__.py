"""Reference models: the public recipe retrained from scratch, their folder on disk, its calibration.

- ``build``: training the missing models (on a backend), loading the first N as arrays;
- ``folder``: one reference folder on disk, the model files and index.json, written and checked;
- ``calibration``: models trained alone and warm (median of three, after a warm-up): the time limit's basis;
- ``split_arrays``: what a task needs of a split wherever it runs (recipe, architecture, arrays).
"""
