"""Everything reported beside the official score: intervals, the ceiling, diagnostics, auxiliary metrics.

- ``uncertainty``: 95% intervals for F and the score (why and how: its docstring);
- ``resampling``: the intervals' pieces (variance parts, replicates, the utility ratio's jackknife);
- ``ceiling``: F of retraining against retraining at this N, and the normalised score;
- ``diagnostics``: per-run diagnostics (retrained-likeness, two groups, duplicates);
- ``dependence``: runs that share work, flagged from their outputs;
- ``run_record``: score.json's ``diagnostics`` section (typed, with its one-line flags);
- ``auxiliary``: metrics from the literature (KLoM, a likelihood-ratio attack), never mixed in;
- ``recompute``: all of the above for a score folder, from its saved arrays alone.
"""
