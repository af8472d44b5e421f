"""Reference models: the public recipe retrained from scratch, their folder on disk, its calibration."""
