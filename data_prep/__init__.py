"""Organiser tools, run once per challenge: build fixed splits and pretrain the original model."""
