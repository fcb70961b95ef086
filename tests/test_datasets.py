"""Fashion-MNIST for the convolutional optimizees: the shipped test set, a system's full set, corrupt and missing
files."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from l2l_helpers import settings
from l2l_helpers.optimizees import datasets
from l2l_helpers.optimizees.datasets import DEBIAN_FASHION, FASHION_FILES, load_fashion_mnist

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


def test_fashion_mnist_arrays_are_torchvisions_decoding(tmp_path):
    """torchvision's IDX reader on the shipped test set (unpacked) gives the loader's arrays: the offline sample's parts
    are its uint8 images at the fixed permutation's positions divided by 255, as float32, and its int64 labels."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    from l2l_helpers.optimizees.data import offline_split

    raw = _copy_test_set(tmp_path)
    for part in ("test_images", "test_labels"):
        name = FASHION_FILES[part][0]
        (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress((raw / name).read_bytes()))
    images = read_image_file(str(tmp_path / "t10k-images-idx3-ubyte"))  # (10000, 28, 28) uint8
    labels = read_label_file(str(tmp_path / "t10k-labels-idx1-ubyte"))  # (10000,) int64
    as_floats = images.unsqueeze(1).float() / 255
    data = load_fashion_mnist(tmp_path, download=False, verbose=False, system_dir=None)
    meta_train, held_out = offline_split()
    assert data.train_images.dtype == data.test_images.dtype == torch.float32
    assert data.train_labels.dtype == data.test_labels.dtype == labels.dtype == torch.int64
    assert torch.equal(data.train_images, as_floats[meta_train]) and torch.equal(data.test_images, as_floats[held_out])
    assert torch.equal(data.train_labels, labels[meta_train]) and torch.equal(data.test_labels, labels[held_out])


def test_fashion_mnist_files_are_not_torchvisions_gzip_files():
    """Why torchvision.datasets.FashionMNIST does not read them: the same file names, other md5s (its mirror's gzip
    files), so it would discard these and download again."""
    from torchvision.datasets import FashionMNIST

    assert [name for name, _ in FashionMNIST.resources] == [name for name, _ in FASHION_FILES.values()]
    pairs = zip(FashionMNIST.resources, FASHION_FILES.values(), strict=True)
    assert all(theirs != ours for (_, theirs), (_, ours) in pairs)


# --------------------------------------------------------------------------------------------
# CIFAR-10 through torchvision.datasets.CIFAR10, against the pickle decoding written out by hand


def _py2_pickle(batch: dict) -> bytes:
    """A pickle as Python 2 wrote CIFAR-10's batches: keys are byte strings, read as str with ``encoding="latin1"``
    (torchvision's) and as bytes with ``encoding="bytes"``."""
    blob = pickle.dumps(batch, protocol=2)
    for key in batch:
        raw = key.encode()
        blob = blob.replace(b"X" + len(raw).to_bytes(4, "little") + raw, b"U" + bytes([len(raw)]) + raw)
    return blob


def _handwritten_decode(blob: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """The oracle: one batch decoded by hand, images (n, 3, 32, 32) in [0, 1] from its channel-major rows."""
    batch = pickle.loads(blob, encoding="bytes")
    images = torch.from_numpy(batch[b"data"].reshape(-1, 3, 32, 32).astype("float32") / 255.0)
    return images, torch.tensor(batch[b"labels"], dtype=torch.long)


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """Write a small CIFAR-10 folder (random images, official layout and pickles); torchvision's and this project's md5
    tables point at its files. Returns a function taking the test batch's size, giving the root and each batch's
    bytes."""
    from torchvision.datasets import CIFAR10

    def make(n_test: int = 7, n_train: int = 3) -> tuple[Path, dict[str, bytes]]:
        rng = np.random.default_rng(0)
        folder = tmp_path / "cifar-10-batches-py"
        folder.mkdir()
        blobs = {}
        for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
            n = n_test if name == "test_batch" else n_train
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            blobs[name] = _py2_pickle({"data": data, "labels": rng.integers(0, 10, n).tolist()})
        blobs["batches.meta"] = _py2_pickle({"label_names": list(datasets.CIFAR_CLASSES)})
        for name, blob in blobs.items():
            (folder / name).write_bytes(blob)
        md5 = {name: hashlib.md5(blob).hexdigest() for name, blob in blobs.items()}
        monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{k}", md5[f"data_batch_{k}"]] for k in range(1, 6)])
        monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
        monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5["batches.meta"]})
        return tmp_path, blobs

    return make


def test_cifar10_constants_are_torchvisions():
    from torchvision.datasets import CIFAR10

    assert datasets.CIFAR_TARBALL == (CIFAR10.filename, CIFAR10.tgz_md5)
    assert (datasets.CIFAR_URL, datasets.CIFAR_FOLDER) == (CIFAR10.url, CIFAR10.base_folder)


def test_cifar10_through_torchvision_gives_the_handwritten_decodings_arrays(fake_cifar):
    """The images and labels torchvision reads are the hand-written decoding's, value for value, in the same dtype and
    the same (contiguous, channels-first) layout; the training split is the five batches in order."""
    root, blobs = fake_cifar()
    for train, names in ((True, [f"data_batch_{k}" for k in range(1, 6)]), (False, ["test_batch"])):
        images, labels = datasets._cifar10_split(root, train=train)
        decoded = [_handwritten_decode(blobs[name]) for name in names]
        want_images, want_labels = torch.cat([x for x, _ in decoded]), torch.cat([y for _, y in decoded])
        assert images.dtype == want_images.dtype == torch.float32 and labels.dtype == torch.int64
        assert images.shape == want_images.shape and images.is_contiguous()
        assert torch.equal(images, want_images) and torch.equal(labels, want_labels)
    assert images[0, 1, 0, 0] == pytest.approx(
        pickle.loads(blobs["test_batch"], encoding="bytes")[b"data"][0, 1024] / 255
    )


def test_cifar10_tarball_is_unpacked_and_split_like_fashion_mnist(fake_cifar, monkeypatch, capsys):
    """A tarball on disk is checked and unpacked by torchvision; training uses the five batches, evaluation the
    offline permutation's 2,000 held-out test images, as for Fashion-MNIST."""
    from l2l_helpers.optimizees.data import offline_split

    root, blobs = fake_cifar(n_test=10_000)
    tarball = root / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    shutil.rmtree(root / "cifar-10-batches-py")
    monkeypatch.setattr(datasets, "CIFAR_TARBALL", (tarball.name, hashlib.md5(tarball.read_bytes()).hexdigest()))
    monkeypatch.setattr(datasets, "_CACHE", {})
    data = datasets.load_cifar10(root, download=False)
    assert "CIFAR-10 from" in capsys.readouterr().out and (root / "cifar-10-batches-py" / "test_batch").is_file()
    test_x, test_y = _handwritten_decode(blobs["test_batch"])
    _, held_out = offline_split()
    assert data.source == "cifar10" and data.train_images.shape == (15, 3, 32, 32)
    assert torch.equal(data.test_images, test_x[held_out]) and torch.equal(data.test_labels, test_y[held_out])


def test_corrupt_partial_or_incomplete_cifar_files_say_what_to_do(fake_cifar, monkeypatch):
    root, blobs = fake_cifar()
    folder = root / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes(blobs["test_batch"][:-10])
    with pytest.raises(
        ValueError, match=r"test_batch is corrupt \(md5 mismatch\): delete .*download the tarball again"
    ):
        datasets._cifar10_split(root, train=False)
    (folder / "data_batch_2").unlink()
    with pytest.raises(ValueError, match="holds no data_batch_2: unpack the whole tarball"):
        datasets._cifar10_split(root, train=True)
    shutil.rmtree(folder)
    tarball = root / "cifar-10-python.tar.gz"
    tarball.write_bytes(b"not a tarball")
    monkeypatch.setattr(datasets, "_CACHE", {})
    with pytest.raises(ValueError, match=r"corrupt or partial \(md5 .*download .*cifar-10-python.tar.gz again"):
        datasets.load_cifar10(root, download=False)


def test_failed_cifar_download_says_how_to_get_it_and_leaves_no_file(tmp_path, monkeypatch):
    """Online with no route to the dataset's host: torchvision's download fails, nothing is left behind, and the
    error says where to get the tarball."""

    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(FileNotFoundError, match=r"could not be downloaded .*no route to host.*kriz/cifar-10-python"):
        datasets.load_cifar10(tmp_path, download=True, verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_cifar_says_how_to_get_it_and_auto_falls_back_to_fashion_mnist(tmp_path, monkeypatch, capsys):
    from l2l_helpers.optimizees.datasets import load_cifar10, load_conv_data

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
