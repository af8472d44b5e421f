"""Ingestion: a submission run N times in a sealed worker (sandbox, confinement, limits), its models handed back.

- ``runner``: the contract and the protocol, the scorer's clock and verdicts (``run_submission``);
- ``worker_process``: starting the worker process, its pipes, freezing and ending it;
- ``worker``: the worker itself (``python -m scoring.ingestion.worker``), inside the sandbox;
- ``fork_server``: one fresh process per run, forked from the warm worker, and what it wipes between runs;
- ``channel``: the pipes between scorer and worker, read defensively;
- ``tensor_payload``: a returned model as safetensors, read by a strict parser of its own;
- ``sandbox``: bubblewrap's argv from one plan; ``syscall_filter``: its seccomp filter;
- ``confinement``: process limits and control from outside; ``cgroups``: process and memory caps, the freezer;
- ``limits``: the efficiency rule (time, memory, output); ``run_seeds``: the seed each run sees;
- ``chunks``: a submission's runs in chunks, each a task on a backend.
"""
