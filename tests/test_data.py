"""Datasets: the bundled digits, and CIFAR-10 read from archive or folder with checksums."""

import shutil

import pytest
import torch
from fake_cifar import make_fake_cifar10

from starter_kit import data
from starter_kit.data import CIFAR10_ARCHIVE, CIFAR10_FOLDER, load_cifar10, load_dataset, load_digits


def test_digits_is_the_bundled_dataset_as_normalised_tensors():
    digits = load_digits()
    assert digits.images.shape == (1797, 1, 8, 8)
    assert digits.images.dtype == torch.float32
    assert digits.images.min() >= 0.0 and digits.images.max() <= 1.0
    assert digits.labels.dtype == torch.int64
    assert digits.num_classes == 10 and digits.n_official_train is None
    assert digits.sha256 == load_digits().sha256


def test_unknown_dataset_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits, cifar10"):
        load_dataset("mnist")


@pytest.fixture()
def fake_cifar(tmp_path):
    return tmp_path, make_fake_cifar10(tmp_path)


@pytest.mark.parametrize("where", ["root", "archive", "folder"])
def test_cifar10_loads_from_archive_or_folder(fake_cifar, where):
    root, md5 = fake_cifar
    path = {"root": root, "archive": root / CIFAR10_ARCHIVE, "folder": root / CIFAR10_FOLDER}[where]
    if where == "folder":
        (root / CIFAR10_ARCHIVE).unlink()
    cifar = load_cifar10(path, checksums=md5)
    assert cifar.images.shape == (120, 3, 32, 32)
    assert cifar.n_official_train == 100
    assert cifar.labels[:10].tolist() == list(range(10))
    assert cifar.classes[0] == "airplane"


def test_archive_and_folder_give_the_same_data(fake_cifar):
    root, md5 = fake_cifar
    from_archive = load_cifar10(root / CIFAR10_ARCHIVE, checksums=md5)
    from_folder = load_cifar10(root / CIFAR10_FOLDER, checksums=md5)
    assert from_archive.sha256 == from_folder.sha256
    assert torch.equal(from_archive.images, from_folder.images)


def test_cifar10_root_comes_from_the_environment(fake_cifar, monkeypatch):
    root, md5 = fake_cifar
    monkeypatch.setenv(data.CIFAR10_ENV, str(root))
    monkeypatch.setattr(data, "CIFAR10_MD5", md5)
    assert load_dataset("cifar10").n_official_train == 100


def test_missing_cifar10_says_where_it_looked_and_what_it_expects(tmp_path, monkeypatch):
    monkeypatch.delenv(data.CIFAR10_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="--data-root.*CIFAR10_ROOT"):
        load_cifar10(None)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*{CIFAR10_ARCHIVE}.*{CIFAR10_FOLDER}"):
        load_cifar10(tmp_path)


def test_real_checksums_reject_a_look_alike_archive(fake_cifar):
    root, _ = fake_cifar
    with pytest.raises(ValueError, match="corrupt or not the official release.*MD5"):
        load_cifar10(root)


def test_a_corrupt_batch_file_is_caught_by_its_checksum(fake_cifar):
    root, md5 = fake_cifar
    (root / CIFAR10_ARCHIVE).unlink()
    batch = root / CIFAR10_FOLDER / "data_batch_3"
    blob = bytearray(batch.read_bytes())
    blob[-5] ^= 0xFF
    batch.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="data_batch_3 is corrupt"):
        load_cifar10(root, checksums=md5)


def test_a_missing_batch_file_is_named(fake_cifar):
    root, md5 = fake_cifar
    (root / CIFAR10_ARCHIVE).unlink()
    (root / CIFAR10_FOLDER / "data_batch_5").unlink()
    with pytest.raises(FileNotFoundError, match="not found|lacks data_batch_5"):
        load_cifar10(root / CIFAR10_FOLDER, checksums=md5)


def test_a_truncated_archive_is_reported_not_raised_as_a_traceback(fake_cifar):
    root, md5 = fake_cifar
    shutil.rmtree(root / CIFAR10_FOLDER)
    archive = root / CIFAR10_ARCHIVE
    archive.write_bytes(archive.read_bytes()[:200])
    md5 = dict(md5, **{CIFAR10_ARCHIVE: __import__("hashlib").md5(archive.read_bytes()).hexdigest()})
    with pytest.raises(ValueError, match="not a readable .tar.gz"):
        load_cifar10(root, checksums=md5)
