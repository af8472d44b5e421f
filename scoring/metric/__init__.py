"""The official metric: pure functions on confidence arrays that know nothing of models or files."""
