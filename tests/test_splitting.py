"""Index splits: seeded, stratified, disjoint, and each forget strategy."""

import numpy as np
import pytest

from data_prep.splitting import PARTS, ForgetSpec, split_indices

LABELS = np.repeat(np.arange(10), 100)


def test_parts_are_disjoint_sorted_and_cover_the_data():
    parts = split_indices(LABELS, seed=1, forget=ForgetSpec())
    assert set(parts) == set(PARTS)
    for part in PARTS:
        assert np.all(np.diff(parts[part]) > 0) and parts[part].dtype == np.int64
    union = np.concatenate([parts["train"], parts["val"], parts["test"]])
    assert np.array_equal(np.sort(union), np.arange(len(LABELS)))
    assert np.array_equal(np.union1d(parts["retain"], parts["forget"]), parts["train"])
    assert len(np.intersect1d(parts["retain"], parts["forget"])) == 0


def test_test_and_validation_are_stratified_by_class():
    parts = split_indices(LABELS, seed=1, forget=ForgetSpec())
    assert np.bincount(LABELS[parts["test"]]).tolist() == [20] * 10
    assert np.bincount(LABELS[parts["val"]]).tolist() == [10] * 10
    assert len(parts["forget"]) == round(0.1 * len(parts["train"]))


def test_same_seed_same_split_other_seed_other_split():
    a = split_indices(LABELS, seed=7, forget=ForgetSpec())
    b = split_indices(LABELS, seed=7, forget=ForgetSpec())
    c = split_indices(LABELS, seed=8, forget=ForgetSpec())
    assert all(np.array_equal(a[p], b[p]) for p in PARTS)
    assert not np.array_equal(a["forget"], c["forget"])


def test_official_train_part_is_kept_and_test_part_halved():
    parts = split_indices(LABELS, seed=0, forget=ForgetSpec(), n_official_train=800)
    assert np.array_equal(parts["train"], np.arange(800))
    assert len(parts["val"]) == len(parts["test"]) == 100
    assert parts["val"].min() >= 800


def test_class_forgetting_takes_every_training_image_of_the_classes():
    parts = split_indices(LABELS, seed=0, forget=ForgetSpec("class", classes=(3, 7)))
    assert set(LABELS[parts["forget"]]) == {3, 7}
    assert not np.isin(LABELS[parts["retain"]], [3, 7]).any()
    assert len(parts["forget"]) == np.isin(LABELS[parts["train"]], [3, 7]).sum()


def test_group_forgetting_never_splits_a_group():
    groups = np.arange(len(LABELS)) % 37
    parts = split_indices(LABELS, seed=0, forget=ForgetSpec("group", fraction=0.2, groups=groups))
    forgotten = set(groups[parts["forget"]])
    assert forgotten.isdisjoint(groups[parts["retain"]])
    assert len(parts["forget"]) >= 0.2 * len(parts["train"])


def test_unknown_strategy_is_an_error():
    with pytest.raises(ValueError, match="unknown forget strategy 'oops'"):
        split_indices(LABELS, seed=0, forget=ForgetSpec("oops"))
