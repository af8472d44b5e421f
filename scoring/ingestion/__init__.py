"""Ingestion: a submission run N times in a sealed worker (sandbox, confinement, limits), its models handed back."""
