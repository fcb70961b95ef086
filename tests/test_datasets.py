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


# --------------------------------------------------------------------------------------------
# CIFAR-10: the official python tarball, read without torchvision


def _cifar_tarball(path: Path, names: list[str], n: int = 5) -> dict[str, str]:
    """A small tarball laid out as the official one (cifar-10-batches-py/<batch>, pickled dicts); its batches' md5s."""
    import hashlib
    import io
    import pickle
    import tarfile

    import numpy as np

    md5s = {}
    with tarfile.open(path, "w:gz") as tar:
        for k, name in enumerate(names):
            data = (np.arange(n * 3072, dtype=np.int64).reshape(n, 3072) * (k + 1) % 256).astype(np.uint8)
            blob = pickle.dumps({b"data": data, b"labels": [(i + k) % 10 for i in range(n)]})
            md5s[name] = hashlib.md5(blob).hexdigest()
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return md5s


def test_cifar_tarball_is_read_as_images_and_labels(tmp_path):
    from l2l_helpers.datasets import read_cifar_tarball

    path = tmp_path / "cifar-10-python.tar.gz"
    md5s = _cifar_tarball(path, ["data_batch_1", "test_batch"])
    batches = read_cifar_tarball(path, md5=None, batches=md5s)
    images, labels = batches["test_batch"]
    assert images.shape == (5, 3, 32, 32) and images.dtype == torch.float32
    assert labels.tolist() == [1, 2, 3, 4, 5]
    # channel-major rows, as the official layout: the first 1,024 values are the red plane
    assert images[0, 0, 0, 1] == pytest.approx(((1 * 2) % 256) / 255)
    assert images[0, 1, 0, 0] == pytest.approx(((1024 * 2) % 256) / 255)


def test_corrupt_partial_or_incomplete_cifar_tarballs_say_to_download_again(tmp_path):
    from l2l_helpers.datasets import read_cifar_tarball

    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"not a tarball")
    with pytest.raises(ValueError, match=r"corrupt or partial \(md5 .*download .*cifar-10-python.tar.gz again"):
        read_cifar_tarball(path)  # the official md5
    md5s = _cifar_tarball(path, ["data_batch_1", "test_batch"])
    with pytest.raises(ValueError, match="holds no data_batch_2"):
        read_cifar_tarball(path, md5=None, batches={**md5s, "data_batch_2": "0" * 32})
    with pytest.raises(ValueError, match="test_batch is corrupt"):
        read_cifar_tarball(path, md5=None, batches={**md5s, "test_batch": "0" * 32})
    path.write_bytes(path.read_bytes()[:200])  # a download cut short
    with pytest.raises(ValueError, match="corrupt or partial; download it again"):
        read_cifar_tarball(path, md5=None, batches=md5s)


def test_missing_cifar_says_how_to_get_it_and_auto_falls_back_to_fashion_mnist(tmp_path, monkeypatch, capsys):
    from l2l_helpers.datasets import load_cifar10, load_conv_data

    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 is not in .*kriz/cifar-10-python.tar.gz"):
        load_cifar10(tmp_path, download=False)
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(ValueError, match="holds no data_batch_1"):
        load_cifar10(tmp_path, download=False)
    monkeypatch.setenv("L2L_DATA_DIR", str(tmp_path / "empty"))
    data = load_conv_data("auto")
    assert data.source in ("full", "offline-sample")
    assert "CIFAR-10, the paper's dataset, is not on disk: this run uses Fashion-MNIST" in capsys.readouterr().out
    with pytest.raises(ValueError, match="dataset='imagenet' is unknown"):
        load_conv_data("imagenet")
