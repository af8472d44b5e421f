"""Everything reported beside the official score: intervals, the ceiling, diagnostics, auxiliary metrics."""
