"""The official metric: pure functions on confidence arrays that know nothing of models or files.

- ``forgetting``: the official score, exact and fast (epsilons, F, the score);
- ``transcription``: the same metric transcribed literally from the spec, dense and slow (the tests' oracle);
- ``files``: ``python -m scoring metric``'s work, F of two saved .npy arrays.
"""
