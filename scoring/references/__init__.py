"""Reference models: the public recipe retrained from scratch, their folder on disk, its calibration.

- ``build``: training the missing models (on a backend), loading the first N as arrays;
- ``folder``: one reference folder on disk, the model files and index.json, written and checked;
- ``calibration``: one model trained alone, the basis of the default time limit;
- ``split_arrays``: what a task needs of a split wherever it runs (recipe, architecture, arrays).
"""
