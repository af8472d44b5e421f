"""On a GPU machine only (CI has none): a sealed submission and reference models on CUDA.

These import only what a bare GPU box has (torch, numpy, scikit-learn): the sandboxed
worker and the reference builder, not the report or the notebook tooling.
"""

from __future__ import annotations

import pytest
import torch

from data_prep.build import BuildOptions, build_split
from scoring.ingestion import sandbox
from scoring.ingestion.limits import Limits
from scoring.ingestion.runner import job_from_split, run_submission
from starter_kit.splits import load_split

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

GPU_SUBMISSION = """\
import torch

def unlearning(net, retain_loader, forget_loader, val_loader):
    assert torch.cuda.is_available(), "no CUDA device inside the sandbox"
    device = next(net.parameters()).device
    assert device.type == "cuda", f"the model arrived on {device}"
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    net.train()
    for inputs, targets in retain_loader:
        loss = torch.nn.functional.cross_entropy(net(inputs.to(device)), targets.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()
"""


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    out = tmp_path_factory.mktemp("cuda-split") / "digits-public"
    return build_split(BuildOptions(dataset="digits", split="public", out=out, epochs=2, progress=False))


@pytest.mark.skipif(sandbox.sandbox_problem() is not None, reason=f"no sandbox here: {sandbox.sandbox_problem()}")
def test_a_sealed_submission_trains_on_the_gpu(tiny_split):
    """The sandbox binds the NVIDIA devices, the model arrives on CUDA, and the worker's
    device warm-up (before run 0, not charged) leaves run 0 like the others."""
    job = job_from_split(load_split(tiny_split), GPU_SUBMISSION, "gpu.py", threads=1, device="cuda")
    states = []
    result = run_submission(
        job, [0, 1, 2], Limits(run_seconds=20.0), lambda k, state: states.append(state), progress=False
    )
    assert result.status == "completed", result.reason
    assert len(states) == 3 and all(torch.isfinite(v.float()).all() for s in states for v in s.values())
    times = [run.seconds for run in result.runs]
    print("run seconds on the GPU:", [round(t, 3) for t in times])


def test_reference_models_train_on_the_gpu(tiny_split, tmp_path):
    from scoring.references.build import build_references, load_references

    split = load_split(tiny_split)
    build_references(split, 3, tmp_path / "refs", device="cuda", progress=False)
    refs = load_references(split, 3, tmp_path / "refs")
    assert refs.n_models == 3 and (refs.test_accuracy > 0.5).all(), refs.test_accuracy
