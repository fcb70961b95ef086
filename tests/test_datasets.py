"""Fashion-MNIST for the convolutional optimizees: the shipped test set, a system's full set, corrupt and missing
files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from l2l_helpers import settings
from l2l_helpers.datasets import DEBIAN_FASHION, FASHION_FILES, load_fashion_mnist

SHIPPED = settings.data_dir() / "FashionMNIST" / "raw"


def _copy_test_set(root: Path) -> Path:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for part in ("test_images", "test_labels"):
        shutil.copy(SHIPPED / FASHION_FILES[part][0], raw)
    return raw


def test_shipped_test_set_gives_the_offline_sample(tmp_path):
    _copy_test_set(tmp_path)
    data = load_fashion_mnist(tmp_path, download=False, verbose=False, system_dir=None)
    assert data.source == "offline-sample" and "offline sample" in data.description
    assert data.train_images.shape == (8000, 1, 28, 28) and data.test_images.shape == (2000, 1, 28, 28)
    assert data.train_images.dtype == torch.float32 and 0 <= float(data.train_images.min()) < 1e-6
    assert float(data.train_images.max()) == 1.0
    assert set(data.train_labels.tolist()) == set(range(10)) and len(data.classes) == 10
    # meta-training and held-out images are different images of the test set
    together = torch.cat([data.train_images, data.test_images]).flatten(1)
    assert len(torch.unique(together, dim=0)) > 9_900  # (a few of Fashion-MNIST's images are duplicates)


def test_corrupt_or_missing_files_say_what_to_do(tmp_path):
    raw = _copy_test_set(tmp_path / "corrupt")
    with gzip.open(raw / FASHION_FILES["test_labels"][0], "wb") as fh:
        fh.write(b"not labels")
    with pytest.raises(ValueError, match="corrupt"):
        load_fashion_mnist(tmp_path / "corrupt", download=False, verbose=False, system_dir=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "empty", download=False, verbose=False, system_dir=None)


@pytest.mark.skipif(not (DEBIAN_FASHION / FASHION_FILES["train_images"][0]).is_file(), reason="no full set installed")
def test_full_set_from_the_system_package_keeps_the_same_held_out_images(tmp_path):
    _copy_test_set(tmp_path)
    full = load_fashion_mnist(tmp_path, download=False, verbose=False)
    sample = load_fashion_mnist(tmp_path, download=False, verbose=False, system_dir=None)
    assert full.source == "full" and full.train_images.shape == (60000, 1, 28, 28)
    assert torch.equal(full.test_images, sample.test_images)
