"""A submission's runs in chunks (scoring.ingestion.chunks) on the local backend: chunking, the time rule, streaming.

The same code runs on Ray (tests/ray_in_namespace.py); here a chunk is a stream run in
this process, which yields each run's outputs as the run is evaluated and then the
chunk's ingestion. A retried chunk is imitated by a backend that replays a stream from
its start, as Ray re-runs a chunk whose node died.
"""

from typing import cast

import numpy as np
import pytest
from submissions import _fixtures as kit

from scoring.backends.interface import LocalBackend
from scoring.ingestion.chunks import ChunkResult, RunOutputs, run_in_chunks
from scoring.ingestion.limits import Limits
from scoring.ingestion.run_seeds import derived_seed
from scoring.ingestion.runner import job_from_split
from scoring.score import run_seed


def countdown(n, log):
    for k in range(n, 0, -1):
        log.append(f"yield {k}")
        yield k


def test_a_local_stream_yields_each_item_when_the_caller_asks_for_it():
    log = []
    with LocalBackend(1) as backend:
        streams = [backend.stream(countdown, 2, log), backend.stream(countdown, 1, log)]
        assert log == []  # nothing runs at stream(): it runs as its items are collected
        for _stream, item in backend.as_yielded(streams):
            log.append(f"got {item}")
    assert log == ["yield 2", "got 2", "yield 1", "got 1", "yield 1", "got 1"]


def test_a_pool_streams_every_item_of_every_task():
    with LocalBackend(2) as backend:
        streams = [backend.stream(countdown, n, []) for n in (3, 2)]
        got = {}
        for stream, item in backend.as_yielded(streams):
            got.setdefault(streams.index(stream), []).append(item)
    assert got == {0: [3, 2, 1], 1: [2, 1]}


def test_the_chunks_are_covered_in_order_and_default_to_one_per_slot():
    from scoring.ingestion.chunks import MIN_CHUNK_RUNS, chunk_bounds, default_chunk_runs

    assert chunk_bounds(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert default_chunk_runs(512, 16) == 32 and default_chunk_runs(20, 16) == MIN_CHUNK_RUNS
    with pytest.raises(ValueError, match="chunk_runs must be an integer >= 1"):
        chunk_bounds(5, 0)


def test_the_time_rule_charges_all_runs():
    from scoring.ingestion.chunks import _combine
    from scoring.ingestion.runner import Ingestion, RunRecord

    def chunk(first, seconds, caps=None):
        runs = [RunRecord(index=first + k, seed=k, seconds=s, reported_seconds=None) for k, s in enumerate(seconds)]
        return ChunkResult(first, Ingestion("completed", None, runs=runs, caps_missing=caps), outputs=[])

    limits = Limits(run_seconds=1.0)
    fits = _combine([chunk(0, [0.9, 0.9], []), chunk(2, [0.9, 1.1], ["freezer"])], 4, limits, sealed=True)
    assert fits.status == "completed" and fits.caps_missing == ["freezer"]  # 3.8 <= 4 x 1.0; any chunk's gap
    over = _combine([chunk(0, [0.9, 1.2]), chunk(2, [0.9, 1.1])], 4, limits, sealed=True)
    assert over.status == "rejected" and "took 4.10 s" in over.reason and "4 x 1.000 s" in over.reason
    short = _combine([chunk(0, [0.1, 0.1])], 4, limits, sealed=True)
    assert short.status == "failed" and short.reason == "2 of 4 runs came back"


def test_a_run_failing_in_a_later_chunk_is_named_by_its_chunk(digits_split):
    seeds = [run_seed(digits_split.manifest_sha256, k) for k in range(3)]
    source = (
        "import torch\n"
        "def unlearning(net, retain, forget, val):\n"
        f"    if torch.initial_seed() == {derived_seed(seeds[2])}:\n"  # the seed a run sees
        "        raise RuntimeError('not this seed')\n"
        "    return net\n"
    )
    job = job_from_split(digits_split, source, "submission.py", threads=1)
    with LocalBackend(1) as backend:
        ingestion, outputs = run_in_chunks(
            job, seeds, Limits(run_seconds=30.0), digits_split, backend, chunk_runs=2, progress=False
        )
    assert ingestion.status == "failed" and len(outputs) == 2 and [r.index for r in ingestion.runs] == [0, 1]
    assert ingestion.reason.startswith("in the worker for runs 2-2 (its run k is run 2+k): run 0 raised RuntimeError")
    assert "--- runs 0-1 (one worker) ---" in ingestion.output


class Recording(LocalBackend):
    """This process's backend, noting every item its streams yield; ``replay``: the first stream is retried.

    The retry imitates Ray re-running a chunk whose node died after it had sent its
    first run: the stream starts again from its first run, and yields everything again.
    """

    def __init__(self, replay: bool = False):
        super().__init__(1)
        self.replay, self.items = replay, cast(list[object], [])

    def as_yielded(self, streams):
        streams = list(streams)
        for number, stream in enumerate(streams):
            attempt = stream.items()
            if self.replay and number == 0:
                first = next(attempt)
                self.items.append(first)
                yield stream, first
                attempt.close()  # the node died: the chunk's worker is gone ...
                attempt = stream.items()  # ... and Ray runs the chunk again from its first run
            for item in attempt:
                self.items.append(item)
                yield stream, item


@pytest.fixture(scope="module")
def fine_tune_job(split):
    from starter_kit.splits import load_split

    loaded = load_split(split)
    seeds = [run_seed(loaded.manifest_sha256, k) for k in range(4)]
    source = (kit.HERE / "fine_tune.py").read_text()
    return loaded, job_from_split(loaded, source, "fine_tune.py", threads=1), seeds


def run(fine_tune_job, backend):
    loaded, job, seeds = fine_tune_job
    arrived = []
    with kit.one_thread(), backend:
        ingestion, outputs = run_in_chunks(
            job,
            seeds,
            Limits(run_seconds=30.0),
            loaded,
            backend,
            chunk_runs=2,
            progress=False,
            sealed=False,
            on_outputs=lambda k, o: arrived.append(k),
        )
    assert ingestion.status == "completed", ingestion.reason
    return ingestion, outputs, arrived


@pytest.fixture(scope="module")
def undisturbed(fine_tune_job):
    """One recorded run of the four, no chunk retried: (backend, ingestion, outputs, arrived)."""
    backend = Recording()
    return (backend, *run(fine_tune_job, backend))


def test_each_run_arrives_as_it_finishes_not_when_its_chunk_ends(undisturbed):
    backend, ingestion, outputs, arrived = undisturbed
    kinds = [(type(i).__name__, getattr(i, "index", getattr(i, "first", None))) for i in backend.items]
    assert kinds == [
        ("RunOutputs", 0),
        ("RunOutputs", 1),
        ("ChunkResult", 0),
        ("RunOutputs", 2),
        ("RunOutputs", 3),
        ("ChunkResult", 2),
    ]
    assert arrived == [0, 1, 2, 3] and [r.index for r in ingestion.runs] == [0, 1, 2, 3] and len(outputs) == 4


def test_a_retried_chunk_counts_each_run_once_and_scores_as_an_undisturbed_run(fine_tune_job, undisturbed):
    """The retried run against an undisturbed one in this process: a bitwise promise of the kit:
    the same machine, seeds and torch threads (another CPU may differ in the last bits)."""
    backend = Recording(replay=True)
    ingestion, outputs, arrived = run(fine_tune_job, backend)
    assert [i.index for i in backend.items if isinstance(i, RunOutputs)] == [0, 0, 1, 2, 3]  # run 0 came twice
    assert arrived == [0, 1, 2, 3]  # ... and was counted once (the progress bar advances with these)
    assert [r.index for r in ingestion.runs] == [0, 1, 2, 3] and len(outputs) == 4
    for mine, theirs in zip(outputs, undisturbed[2], strict=True):
        assert np.array_equal(mine.forget_conf, theirs.forget_conf) and mine.accuracies() == theirs.accuracies()
