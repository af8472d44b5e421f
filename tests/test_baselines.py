"""Every registered baseline keeps the submission contract and fits the time limit."""

import functools
import time

import pytest
import torch

from starter_kit.baselines import BASELINES, get_baseline
from starter_kit.baselines.erase_repair import erase
from starter_kit.submission import seed_everything, submission_loaders
from starter_kit.training import train_model

pytestmark = pytest.mark.usefixtures("single_torch_thread")

# Share of retraining's training examples a baseline may process: the time limit is 20%
# of retraining, and a baseline's defaults should leave half of it for slower machines.
EXAMPLE_BUDGET = 0.10


def run(split, method, seed=0, **hyper):
    seed_everything(seed)
    retain, forget, val = submission_loaders(split, seed)
    net = split.original_model()
    return method(net, retain, forget, val, **hyper), net


def hooked_run(split, method):
    """(model, the net it was given, examples trained on) of ``method`` at seed 0 on digits.

    Examples are those it pushes through the network in training mode, counted by a
    forward hook removed before returning.
    """
    seen = []

    def count(module, inputs):
        if module.training:
            seen.append(len(inputs[0]))

    seed_everything(0)
    retain, forget, val = submission_loaders(split, 0)
    net = split.original_model()
    handle = net.register_forward_pre_hook(count)
    model = method(net, retain, forget, val)
    handle.remove()
    return model, net, sum(seen)


_seed_zero_runs: dict[str, tuple] = {}


def seed_zero_run(split, name):
    """``hooked_run`` of baseline ``name``, once per session (three tests read it; none may change the model)."""
    if name not in _seed_zero_runs:
        _seed_zero_runs[name] = hooked_run(split, BASELINES[name])
    return _seed_zero_runs[name]


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_returns_the_same_architecture_changed_finite_and_in_eval_mode(digits_split, name):
    original = digits_split.original_model().state_dict()
    model, given, _ = seed_zero_run(digits_split, name)
    assert model is given  # in place: nothing copied
    state = model.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in original.items()}
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not any(module.training for module in model.modules())
    assert any(not torch.equal(state[k], original[k]) for k in original if state[k].is_floating_point())


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_is_reproducible_given_the_seed(digits_split, name):
    """Run again at seed 0 against the session's first run (hooked, which must not matter): bitwise, same machine."""
    first, _, _ = seed_zero_run(digits_split, name)
    second, _ = run(digits_split, BASELINES[name], seed=0)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_trains_on_at_most_a_tenth_of_retrainings_examples(digits_split, name):
    """The time rule in a form no machine's speed or load can change: examples processed."""
    recipe = digits_split.recipe
    retraining_examples = recipe.epochs * (len(digits_split.indices["retain"]) // recipe.batch_size) * recipe.batch_size
    assert seed_zero_run(digits_split, name)[2] <= EXAMPLE_BUDGET * retraining_examples


@pytest.mark.timing
@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_fits_the_time_limit(digits_split, name):
    """Wall clock, against a slice of retraining timed in the same moments, so that a slower
    or busier machine slows both alike; best of three each. The limit is 20% of retraining
    and the defaults process at most 10% of its examples: 2x slack for per-call overheads
    (evaluation passes, copies) and for load that hits one timing and not the other."""
    recipe = digits_split.recipe
    slice_epochs = 2
    recipe_slice = recipe.with_epochs(slice_epochs)
    retain_images, retain_labels = (
        digits_split.images("retain"),
        digits_split.labels("retain"),
    )
    baseline_seconds, slice_seconds = [], []
    for _ in range(3):
        started = time.perf_counter()
        run(digits_split, BASELINES[name])
        baseline_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        train_model(recipe_slice, retain_images, retain_labels, 10, seed=0, progress=False)
        slice_seconds.append(time.perf_counter() - started)
    retraining_seconds = min(slice_seconds) * recipe.epochs / slice_epochs
    assert min(baseline_seconds) < 0.2 * retraining_seconds, (baseline_seconds, retraining_seconds)


def test_unknown_baseline_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown baseline 'nope': choose one of finetune, "):
        get_baseline("nope")
    assert get_baseline("finetune") is BASELINES["finetune"]


@pytest.mark.parametrize(
    "hyper, message",
    [
        (
            {"epoch_share": 0},
            r"epoch_share \(a share of the recipe's epochs\) must be positive",
        ),
        ({"lr_scale": 0.0}, "lr_scale .* must be positive"),
    ],
)
def test_bad_hyper_parameters_are_clear_errors(digits_split, hyper, message):
    with pytest.raises(ValueError, match=message):
        run(digits_split, BASELINES["finetune"], **hyper)


def test_an_empty_loader_is_a_clear_error(digits_split):
    retain, forget, val = submission_loaders(digits_split, 0)
    empty = digits_split.loader("forget", 64)
    empty.dataset.tensors = (empty.dataset.tensors[0][:0], empty.dataset.tensors[1][:0])
    with pytest.raises(ValueError, match="forget_loader is empty"):
        BASELINES["neggrad_plus"](digits_split.original_model(), retain, empty, val)


def test_erase_resets_the_head_and_shrinks_the_rest(digits_split):
    net = digits_split.original_model()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(0)
    erase(net, shrink=0.5, noise=0.0)
    after = net.state_dict()
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert torch.allclose(after["conv1.weight"], 0.5 * before["conv1.weight"])
    assert torch.allclose(after["layers.2.conv1.weight"], 0.5 * before["layers.2.conv1.weight"])
    assert torch.equal(after["bn1.weight"], before["bn1.weight"])  # BatchNorm terms stay


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_runs_on_the_device_of_the_model(digits_split, name):
    seed_everything(0)
    retain, forget, val = submission_loaders(digits_split, 0)
    model = BASELINES[name](digits_split.original_model("cuda"), retain, forget, val)
    assert all(p.device.type == "cuda" for p in model.parameters())


def test_a_loader_without_the_recipe_is_a_clear_error_unless_recipe_is_given(
    digits_split,
):
    retain, forget, val = (digits_split.loader(part, 64) for part in ("retain", "forget", "val"))
    with pytest.raises(
        ValueError,
        match="no training recipe: build the loaders with starter_kit.submission",
    ):
        BASELINES["finetune"](digits_split.original_model(), retain, forget, val)
    model = BASELINES["finetune"](digits_split.original_model(), retain, forget, val, recipe=digits_split.recipe)
    assert not model.training


def test_the_budget_is_a_share_of_the_recipes_epochs(digits_split):
    def with_epochs(epochs):
        return functools.partial(BASELINES["finetune"], recipe=digits_split.recipe.with_epochs(epochs))

    def trained_examples(method):
        return hooked_run(digits_split, method)[2]

    batches = len(submission_loaders(digits_split, 0)[0])
    recipe_epochs = digits_split.recipe.epochs
    default, at_recipe = seed_zero_run(digits_split, "finetune")[2], trained_examples(with_epochs(recipe_epochs))
    assert default == at_recipe
    # 1/16 of 8 epochs is half a pass over retain: the budget ends mid-pass.
    at_8 = trained_examples(with_epochs(8))
    assert at_8 < at_recipe
    assert at_8 == pytest.approx(at_recipe * round(batches / 2) / batches, rel=0.05)
    assert trained_examples(with_epochs(3 * recipe_epochs)) == pytest.approx(3 * default, rel=0.01)
