"""Per-example losses, the starting kit's simple MIA and the loss histograms."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from starter_kit.evaluation import mia_on_forget_vs_test, per_example_losses, plot_loss_histograms, simple_mia
from starter_kit.loaders import make_loader

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_mia_is_chance_on_identical_distributions():
    rng = np.random.default_rng(0)
    losses = rng.exponential(size=1000)
    members = np.repeat([0, 1], 500)
    assert 0.4 <= simple_mia(losses, members) <= 0.6


def test_mia_is_near_perfect_on_separated_distributions():
    rng = np.random.default_rng(1)
    losses = np.concatenate([rng.normal(0.0, 0.5, 300), rng.normal(5.0, 0.5, 300)])
    members = np.repeat([1, 0], 300)  # members have the small losses
    assert simple_mia(losses, members) >= 0.98


def test_mia_balances_groups_so_that_chance_stays_one_half():
    # 900 members and 100 non-members from one distribution: guessing "member" would
    # score 0.9 without balancing.
    rng = np.random.default_rng(2)
    losses = rng.exponential(size=1000)
    members = np.r_[np.ones(900, dtype=int), np.zeros(100, dtype=int)]
    assert 0.35 <= simple_mia(losses, members) <= 0.65


def test_mia_is_seeded_and_takes_a_column():
    rng = np.random.default_rng(3)
    losses, members = rng.exponential(size=200), np.repeat([0, 1], 100)
    assert simple_mia(losses, members, random_state=7) == simple_mia(losses[:, None], members, random_state=7)


@pytest.mark.parametrize(
    "losses, members, message",
    [
        (np.ones(30), np.repeat([0, 1], 16), "differ in shape"),
        (np.ones((30, 2)), np.repeat([0, 1], 15), r"shape \[n\] or \[n, 1\]"),
        (np.ones(30), np.repeat([0, 2], 15), "only 0 and 1"),
        (np.ones(30), np.ones(30), "single class"),
        (np.r_[np.nan, np.ones(29)], np.repeat([0, 1], 15), "NaN or infinite"),
        (np.ones(12), np.repeat([0, 1], 6), "too few examples"),
    ],
)
def test_mia_rejects_bad_inputs_with_one_clear_line(losses, members, message):
    with pytest.raises(ValueError, match=message):
        simple_mia(losses, members)


def test_per_example_losses_are_the_cross_entropy_in_loader_order():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    inputs, targets = torch.randn(10, 4), torch.randint(0, 3, (10,))
    losses = per_example_losses(model, make_loader(inputs, targets, batch_size=3))
    expected = nn.functional.cross_entropy(model(inputs), targets, reduction="none").detach().numpy()
    assert losses.shape == (10,) and losses.dtype == np.float64
    np.testing.assert_allclose(losses, expected, rtol=1e-6)


def test_per_example_losses_of_an_empty_loader_is_an_error():
    empty = make_loader(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        per_example_losses(nn.Linear(4, 3), empty)


def test_original_model_mia_and_histograms_on_digits(digits_split):
    original = digits_split.original_model()
    forget, test = digits_split.loader("forget", 512), digits_split.loader("test", 512)
    mia = mia_on_forget_vs_test(original, forget, test, seed=0)
    assert 0.4 <= mia <= 0.8
    figure = plot_loss_histograms({"original": original, "again": original}, forget, test)
    try:
        assert len(figure.axes) == 2 and figure.axes[0].get_title() == "original"
    finally:
        plt.close(figure)
    with pytest.raises(ValueError, match="models is empty"):
        plot_loss_histograms({}, forget, test)
