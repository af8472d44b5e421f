"""Hosting a challenge on Codabench: the bundle an organiser uploads, and a local run of it.

This package owns everything Codabench-specific and nothing else; the runs, the
metric, the score and the report are the kit's own (``scoring.ingestion.worker``,
``scoring.assess.recompute``, ``scoring.html.pages``), imported, never copied.

- ``codabench_bundle``: ``python -m scoring codabench export``, the bundle (competition.yaml,
  pages, the two programs, input and reference data per phase, the starting kit) as a folder
  and a zip;
- ``codabench_data``: what input_data and reference_data hold, written and read;
- ``codabench_rules``: Codabench's own checks of a bundle (its unpacker's and serializers'),
  applied by export and by the offline run;
- ``codabench_costs``: what a phase costs, measured at export (the set-up allowance, the upload);
- ``codabench_ingestion`` and ``codabench_scoring``: the ingestion and scoring programs'
  work; ``codabench_child``: each run of the ingestion in a fresh child process, and everything
  it started ended; ``codabench_programs``: their commands and entry point (each program
  folder's ``run.py``);
- ``image``: the check, at each program's start, that the Docker image holds what they import;
- ``codabench_run``: ``python -m scoring codabench run``, Codabench's compute worker
  emulated offline (folders, command substitution, binds, the worker's metadata);
- ``pages``: the competition's pages, terms and logo, from the kit's own texts;
- ``weights_delta``: a returned model as an exact difference from the original (the upload).
"""
