"""What each method of the baseline zoo promises beyond the contract (which test_baselines checks)."""

import pytest
import torch

from starter_kit.baselines import BASELINES
from starter_kit.baselines._common import IMPORTANCE_FLOOR, distillation_kl, frozen_copy
from starter_kit.baselines.bad_teacher import random_copy
from starter_kit.baselines.random_mask import mask_weights
from starter_kit.baselines.reinit_distill import reinitialise_layers
from starter_kit.baselines.salun import saliency_masks
from starter_kit.baselines.ssd import dampening_factors, fisher_diagonal
from starter_kit.loaders import make_loader
from starter_kit.submission import seed_everything, submission_loaders

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def run(split, name, seed=0, **hyper):
    seed_everything(seed)
    retain, forget, val = submission_loaders(split, seed)
    return BASELINES[name](split.original_model(), retain, forget, val, **hyper)


def test_ssd_only_dampens_weights_and_leaves_batchnorm_statistics(digits_split):
    before = digits_split.original_model().state_dict()
    after = run(digits_split, "ssd").state_dict()
    dampened = 0
    for key, old in before.items():
        new = after[key]
        if not key.endswith(("weight", "bias")):
            assert torch.equal(new, old), key  # running statistics: SSD trains nothing
            continue
        assert (new.abs() <= old.abs()).all(), key
        assert (new * old >= 0).all(), key  # same sign: a factor in [0, 1], never a flip
        dampened += int((new != old).sum())
    assert dampened > 0


def test_ssd_with_an_unreachable_threshold_changes_nothing(digits_split):
    before = digits_split.original_model().state_dict()
    after = run(digits_split, "ssd", alpha=1e30).state_dict()
    assert all(torch.equal(after[key], value) for key, value in before.items())


def forget_only_feature_model():
    """A linear model and loaders where feature 1 is 0 on every retain example, not on forget.

    The weights reading feature 1 get exactly zero retain gradient on any machine (their
    retain importance is exactly 0) and a positive forget gradient.
    """
    generator = torch.Generator().manual_seed(0)
    retain = torch.randn(64, 2, generator=generator)
    retain[:, 1] = 0.0
    forget = torch.randn(16, 2, generator=generator)
    labels = lambda n: torch.arange(n) % 2  # noqa: E731
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.5], [-1.0, -0.5]]))
        net.bias.zero_()
    loaders = [make_loader(x, labels(len(x)), batch_size=16) for x in (retain, forget, retain[:16])]
    return net, loaders


def test_ssd_floors_exactly_zero_importances_instead_of_zeroing_their_weights():
    net, (retain, forget, val) = forget_only_feature_model()
    keep, lost = fisher_diagonal(net, retain), fisher_diagonal(net, forget)
    assert (keep[0][:, 1] == 0).all() and (lost[0][:, 1] > 0).all()  # the exact zeros the model is built for
    floor = IMPORTANCE_FLOOR * float(torch.cat([k.flatten() for k in keep]).double().mean())
    before = net.weight.detach().clone()
    BASELINES["ssd"](net, retain, forget, val, alpha=10.0, lam=1.0)
    expected = (floor / lost[0][:, 1]).clamp(max=1.0)  # dampened against the floor, not multiplied by 0
    assert torch.allclose(net.weight[:, 1], before[:, 1] * expected)
    assert (net.weight[:, 1] != 0).all()
    assert torch.equal(net.weight[:, 0], before[:, 0])  # used by retain as much as by forget: kept


def test_ssd_with_an_unreachable_threshold_changes_nothing_even_where_retain_importance_is_zero():
    net, (retain, forget, val) = forget_only_feature_model()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    BASELINES["ssd"](net, retain, forget, val, alpha=1e30)
    assert all(torch.equal(net.state_dict()[key], value) for key, value in before.items())


def test_ssd_treats_zero_and_underflowing_importances_alike():
    """What differed between CPUs (0 here, a denormal there) gives the same factors."""
    keep = [torch.tensor([1.0, 0.0, 1e-40, 1e-30]), torch.tensor([1.0, 1.0])]
    forget = [torch.tensor([1.0, 1e-3, 1e-3, 1e-3]), torch.tensor([0.0, 1e-40])]
    factors = dampening_factors(keep, forget, alpha=10.0, lam=1.0)
    assert factors[0][1] == factors[0][2] == factors[0][3] > 0
    assert torch.equal(factors[1], torch.ones(2))  # forget importances at the floor: never selected
    assert all(
        torch.equal(f, torch.ones_like(f)) for f in dampening_factors([torch.zeros(3)], [torch.ones(3)], 10.0, 1.0)
    )


def test_salun_never_masks_a_weight_without_forget_gradient():
    net, (_, forget, _) = forget_only_feature_model()
    retain_only = make_loader(torch.tensor([[1.0, 0.0]] * 8), torch.arange(8) % 2, batch_size=8)
    masks = saliency_masks(net, retain_only, saliency=1.0)  # feature 1 is 0 here: no gradient on its weights
    assert masks[0][:, 1].sum() == 0 and masks[0][:, 0].sum() == 2


def test_salun_moves_only_the_salient_weights(digits_split):
    seed_everything(0)
    _, forget, _ = submission_loaders(digits_split, 0)
    original = digits_split.original_model()
    masks = saliency_masks(original, forget, saliency=0.3)
    share = sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)
    assert share == pytest.approx(0.3, abs=0.01)
    before = [p.detach().clone() for p in original.parameters()]
    after = list(run(digits_split, "salun", saliency=0.3).parameters())
    for old, new, mask in zip(before, after, masks, strict=True):
        assert torch.equal(new[mask == 0], old[mask == 0])  # weight decay goes through the mask too
    changed = (
        not torch.equal(new[mask == 1], old[mask == 1]) for old, new, mask in zip(before, after, masks, strict=True)
    )
    assert any(changed)


def test_l1_sparse_without_its_penalty_is_finetuning(digits_split):
    plain = run(digits_split, "finetune").state_dict()
    penalised = run(digits_split, "l1_sparse", gamma=0.0).state_dict()
    assert all(torch.equal(penalised[key], value) for key, value in plain.items())


def test_scrub_without_max_steps_differs_from_scrub(digits_split):
    with_max = run(digits_split, "scrub").state_dict()
    without = run(digits_split, "scrub", max_passes=0).state_dict()
    assert any(not torch.equal(with_max[key], value) for key, value in without.items() if value.is_floating_point())


def test_the_incompetent_teacher_is_a_frozen_random_network(digits_split):
    net = digits_split.original_model()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    torch.manual_seed(0)
    teacher = random_copy(net)
    assert all(torch.equal(net.state_dict()[key], value) for key, value in before.items())  # the student is untouched
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert not torch.equal(teacher.state_dict()["fc.weight"], before["fc.weight"])
    images = digits_split.images("test")[:256]
    accuracy = (teacher(images).argmax(1) == digits_split.labels("test")[:256]).float().mean()
    assert accuracy < 0.5  # it knows nothing (chance is 0.1)


def test_distillation_kl_is_zero_against_itself_and_positive_otherwise():
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    assert distillation_kl(logits, logits, temperature=4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_kl(logits, logits.flip(0), temperature=4.0).item() > 0


def test_frozen_copy_is_independent_of_its_source(digits_split):
    net = digits_split.original_model()
    teacher = frozen_copy(net)
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    assert not torch.equal(next(net.parameters()), next(teacher.parameters()))


def test_reinitialise_layers_resets_the_head_always_and_the_rest_by_chance(
    digits_split,
):
    net = digits_split.original_model()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    torch.manual_seed(0)
    assert reinitialise_layers(net, probability=0.0) == ["fc"]
    after = net.state_dict()
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert torch.equal(after["conv1.weight"], before["conv1.weight"])
    net = digits_split.original_model()
    names = reinitialise_layers(net, probability=1.0, reset_head=False)
    assert "conv1" in names and "layers.2.conv2" in names and "fc" in names  # every layer, the head among them
    assert reinitialise_layers(digits_split.original_model(), probability=0.0, reset_head=False) == []


def test_mask_weights_zeroes_the_given_share_of_kernels_and_keeps_batchnorm(
    digits_split,
):
    net = digits_split.original_model()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    torch.manual_seed(0)
    mask_weights(net, 0.25)
    after = net.state_dict()
    kernels = [key for key, value in before.items() if value.ndim >= 2]
    zeroed = sum(int((after[k] == 0).sum()) for k in kernels) / sum(before[k].numel() for k in kernels)
    assert zeroed == pytest.approx(0.25, abs=0.01)
    assert all(torch.equal(after[key], before[key]) for key in before if before[key].ndim < 2)


@pytest.mark.parametrize(
    "name, hyper, message",
    [
        (
            "scrub",
            {"max_passes": 2},
            r"max_passes must be in \[0, 1\] \(the passes over retain\), got 2",
        ),
        ("scrub", {"temperature": 0.0}, "need temperature > 0"),
        (
            "salun",
            {"saliency": 0.0},
            r"saliency must be a share of the weights in \(0, 1\], got 0.0",
        ),
        ("salun", {"epoch_share": 0}, "epoch_share .* must be positive"),
        ("ssd", {"alpha": 0.0}, "alpha and lam must be positive"),
        ("ssd", {"lam": -1.0}, "alpha and lam must be positive"),
        ("l1_sparse", {"gamma": -1e-4}, "gamma .* must be >= 0"),
        ("bad_teacher", {"temperature": -1.0}, "temperature must be positive"),
        ("bad_teacher", {"lr_scale": 0.0}, "lr_scale .* must be positive"),
        (
            "reinit_distill",
            {"reinit_prob": 1.5},
            r"reinit_prob must be a probability in \[0, 1\]",
        ),
        (
            "reinit_distill",
            {"input_noise": -0.1},
            "need distill >= 0 and input_noise >= 0",
        ),
        (
            "random_mask",
            {"mask_prob": 1.0},
            r"mask_prob must be a probability in \[0, 1\)",
        ),
    ],
)
def test_bad_hyper_parameters_are_clear_errors(digits_split, name, hyper, message):
    with pytest.raises(ValueError, match=message):
        run(digits_split, name, **hyper)
