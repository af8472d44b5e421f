"""Everything reported beside the official score: intervals, the ceiling, diagnostics, auxiliary metrics.

- ``uncertainty``: 95% intervals for F and the score (why and how: its docstring);
- ``resampling``: the intervals' pieces (variance parts, replicates, the utility ratio's jackknife);
- ``ceiling``: F of retraining against retraining at this N, and the normalised score;
- ``diagnostics``: per-run diagnostics (retrained-likeness, two groups, duplicates);
- ``auxiliary``: metrics from the literature (KLoM, a likelihood-ratio attack), never mixed in;
- ``recompute``: all of the above for a score folder, from its saved arrays alone.
"""
