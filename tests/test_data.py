"""MNIST loading: the shipped offline sample, IDX parsing, corrupt and missing files, downloads."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from l2l_helpers.optimizees import data as data_mod
from l2l_helpers.optimizees.data import MNIST_FILES, MNIST_MIRRORS, OFFLINE_TRAIN_SIZE, load_mnist, read_idx

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "MNIST" / "raw"
TEST_IMAGES = SHIPPED / "t10k-images-idx3-ubyte.gz"
TEST_LABELS = SHIPPED / "t10k-labels-idx1-ubyte.gz"


@pytest.fixture(autouse=True)
def fresh_cache():
    """Every test loads from disk; the cache is restored afterwards for other test files."""
    saved = dict(data_mod._CACHE)
    data_mod._CACHE.clear()
    yield
    data_mod._CACHE.clear()
    data_mod._CACHE.update(saved)


@pytest.fixture
def root(tmp_path):
    """A copy of the shipped data folder (test files only) in a temporary root."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (TEST_IMAGES, TEST_LABELS):
        shutil.copy(path, raw / path.name)
    return tmp_path


@pytest.fixture
def no_network(monkeypatch):
    """Make any network access fail the test."""

    def boom(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(urllib.request, "urlopen", boom)
    monkeypatch.setattr(data_mod, "_download", boom)


def idx_bytes(array, type_code=0x08):
    """Encode an array as an IDX file, written independently of read_idx."""
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype).tobytes()


def test_shipped_files_have_official_checksums():
    """The two shipped files are the official MNIST test set."""
    for key in ("test_images", "test_labels"):
        name, md5 = MNIST_FILES[key]
        assert hashlib.md5((SHIPPED / name).read_bytes()).hexdigest() == md5


def test_load_offline_sample(capsys, no_network):
    """Offline: the test set split 8000 / 2000, disjoint, together the full set; values in [0, 1]; printed."""
    data = load_mnist()
    out = capsys.readouterr().out
    assert "offline sample" in out and "8000" in out and "2000" in out
    assert data.source == "offline-sample"
    assert data.train_images.shape == (OFFLINE_TRAIN_SIZE, 784) and data.test_images.shape == (2000, 784)
    assert data.train_labels.shape == (8000,) and data.test_labels.shape == (2000,)
    assert data.train_images.dtype == torch.float32 and data.train_labels.dtype == torch.int64
    for x in (data.train_images, data.test_images):
        assert x.min() >= 0 and x.max() <= 1 and x.max() == 1
    for y in (data.train_labels, data.test_labels):
        assert set(y.tolist()) == set(range(10))
    # independent decoding of the official files
    with gzip.open(TEST_IMAGES) as fh:
        raw = fh.read()
    full = np.frombuffer(raw, np.uint8, offset=16).reshape(10000, 784)
    with gzip.open(TEST_LABELS) as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)
    full_rows = {full[i].tobytes(): int(labels[i]) for i in range(10000)}
    assert len(full_rows) == 10000  # no duplicate images in the official test set

    def rows(images, lab):
        as_bytes = (images.numpy() * 255).round().astype(np.uint8)
        return {as_bytes[i].tobytes(): int(lab[i]) for i in range(len(lab))}

    train, held_out = rows(data.train_images, data.train_labels), rows(data.test_images, data.test_labels)
    assert len(train) == 8000 and len(held_out) == 2000
    assert not set(train) & set(held_out)
    assert {**train, **held_out} == full_rows  # same images with the same labels


def test_offline_split_is_fixed():
    """The split does not depend on global random state."""
    torch.manual_seed(123)
    a = load_mnist(verbose=False)
    data_mod._CACHE.clear()
    torch.manual_seed(456)
    b = load_mnist(verbose=False)
    assert a is not b
    assert torch.equal(a.test_images, b.test_images) and torch.equal(a.train_labels, b.train_labels)


def test_cache_and_description(capsys):
    """The first load prints which data it uses; later calls return the cached object quietly."""
    from l2l_helpers.optimizees import data as data_module

    data_module._CACHE.clear()
    a = load_mnist()
    assert capsys.readouterr().out.strip().endswith(a.description)
    b = load_mnist()
    assert a is b
    assert capsys.readouterr().out == ""


def test_data_dir_from_environment(root, monkeypatch, no_network):
    """L2L_DATA_DIR points the loader at another folder."""
    monkeypatch.setenv("L2L_DATA_DIR", str(root))
    assert data_mod.default_data_dir() == root
    assert load_mnist(verbose=False).source == "offline-sample"
    assert (str(root.resolve()), False) in data_mod._CACHE


def test_read_idx_good_files(tmp_path):
    """read_idx decodes IDX files (plain and gzipped, several dtypes) to the right arrays."""
    images = read_idx(TEST_IMAGES)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    labels = read_idx(TEST_LABELS)
    assert labels.shape == (10000,) and labels.max() == 9
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    (tmp_path / "a.idx").write_bytes(idx_bytes(a))
    assert np.array_equal(read_idx(tmp_path / "a.idx"), a)
    b = rng.normal(size=(6, 2)).astype(np.float32)
    with gzip.open(tmp_path / "b.idx.gz", "wb") as fh:
        fh.write(idx_bytes(b, 0x0D))
    assert np.array_equal(read_idx(tmp_path / "b.idx.gz"), b)
    c = rng.integers(-1000, 1000, size=(7,)).astype(np.int32)
    (tmp_path / "c.idx").write_bytes(idx_bytes(c, 0x0C))
    assert np.array_equal(read_idx(tmp_path / "c.idx"), c)


def test_read_idx_truncated(tmp_path):
    """A file shorter (or longer) than its header says is a ValueError saying so."""
    good = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    (tmp_path / "short.idx").write_bytes(good[:-1])
    with pytest.raises(ValueError, match=r"truncated or corrupt.*delete it"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "long.idx").write_bytes(good + b"\0")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(tmp_path / "long.idx")
    with gzip.open(TEST_LABELS) as fh:
        labels = fh.read()
    with gzip.open(tmp_path / "labels.gz", "wb") as fh:
        fh.write(labels[:5000])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(tmp_path / "labels.gz")
    (tmp_path / "cut.gz").write_bytes(TEST_LABELS.read_bytes()[:2000])  # a cut gzip stream
    with pytest.raises(ValueError, match="not a readable IDX file"):
        read_idx(tmp_path / "cut.gz")


def test_read_idx_bad_magic(tmp_path):
    """A file that is not IDX is a ValueError."""
    (tmp_path / "x.idx").write_bytes(b"hello world, not an idx file")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(tmp_path / "x.idx")
    (tmp_path / "y.idx").write_bytes(b"\0\0")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(tmp_path / "y.idx")


@pytest.mark.parametrize("which", ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
def test_corrupted_test_file(root, which, no_network):
    """A flipped byte in a shipped file is a ValueError saying it is corrupt and what to do."""
    path = root / "MNIST" / "raw" / which
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"corrupt.*delete it.*(online|copy)"):
        load_mnist(root, download=False)
    assert not data_mod._CACHE


def test_truncated_test_file(root, no_network):
    """A truncated shipped file is a ValueError."""
    path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="corrupt"):
        load_mnist(root, download=False)


def test_corrupt_training_files(root, no_network):
    """Training files that are present but not the official ones are a ValueError, not silently used."""
    raw = root / "MNIST" / "raw"
    for key in ("train_images", "train_labels"):
        (raw / MNIST_FILES[key][0]).write_bytes(b"not mnist")
    with pytest.raises(ValueError, match=r"train-.*corrupt"):
        load_mnist(root, download=False)


@pytest.mark.parametrize("download", [False, True])
def test_missing_test_files(tmp_path, download, no_network):
    """An empty root is a FileNotFoundError saying how to restore the shipped files."""
    with pytest.raises(FileNotFoundError, match=r"t10k-.*missing.*git checkout data/.*L2L_DATA_DIR"):
        load_mnist(tmp_path, download=download)


def test_download_false_never_uses_network(root, no_network, capsys):
    """download=False uses the offline sample without any network access."""
    data = load_mnist(root, download=False)
    assert data.source == "offline-sample"
    assert "downloading" not in capsys.readouterr().out


def test_offline_env_means_no_download(root, monkeypatch, no_network):
    """download=None with L2L_OFFLINE=1 (set by conftest) does not download."""
    monkeypatch.setenv("L2L_OFFLINE", "1")
    assert load_mnist(root).source == "offline-sample"


class FakeResponse(io.BytesIO):
    """What urlopen returns: a readable context manager."""


def serve(monkeypatch, contents):
    """Make urlopen serve the given bytes per mirror (an exception instance is raised instead)."""
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        for mirror, body in zip(MNIST_MIRRORS, contents, strict=True):
            if url.startswith(mirror):
                if isinstance(body, BaseException):
                    raise body
                return FakeResponse(body)
        raise AssertionError(f"unexpected url {url}")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


def test_download_with_bad_checksums_falls_back(root, monkeypatch, capsys):
    """Mirrors serving wrong bytes: nothing is kept, a message is printed and the offline sample is used."""
    calls = serve(monkeypatch, [b"wrong bytes", b"also wrong"])
    data = load_mnist(root, download=True)
    out = capsys.readouterr().out
    assert data.source == "offline-sample"
    assert "downloading train-images-idx3-ubyte.gz" in out
    assert "download failed" in out and "checksum mismatch" in out and "offline sample" in out
    assert len(calls) == 2
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted([TEST_IMAGES.name, TEST_LABELS.name])


def test_download_unreachable_falls_back(root, monkeypatch, capsys):
    """Mirrors that cannot be reached (URLError) lead to the offline sample with a message."""
    err = urllib.error.URLError("no route to host")
    serve(monkeypatch, [err, err])
    assert load_mnist(root, download=True).source == "offline-sample"
    assert "download failed" in capsys.readouterr().out


def test_download_tries_next_mirror(tmp_path, monkeypatch):
    """_download skips a mirror serving wrong bytes and keeps the next mirror's intact file."""
    good = b"the right content"
    md5 = hashlib.md5(good).hexdigest()
    calls = serve(monkeypatch, [b"corrupted content", good])
    dest = tmp_path / "file.gz"
    data_mod._download("file.gz", md5, dest, timeout=1.0)
    assert dest.read_bytes() == good
    assert calls == [m + "file.gz" for m in MNIST_MIRRORS]
    assert [p.name for p in tmp_path.iterdir()] == ["file.gz"]


def test_download_into_a_folder_not_made_yet(tmp_path, monkeypatch):
    """An installed copy downloads into a cache folder that does not exist yet: it is made, the file kept."""
    good = b"the right content"
    serve(monkeypatch, [good, good])
    dest = tmp_path / "cache" / "MNIST" / "raw" / "file.gz"
    data_mod._download("file.gz", hashlib.md5(good).hexdigest(), dest, timeout=1.0)
    assert dest.read_bytes() == good


def test_an_installed_copy_reads_the_shipped_test_set(tmp_path, monkeypatch, no_network):
    """With the data folder elsewhere (a user cache) and empty, the test set comes from the package's assets."""
    monkeypatch.setenv("L2L_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(data_mod, "_CACHE", {})
    data = load_mnist(download=False, verbose=False)
    assert data.source == "offline-sample" and len(data.test_labels) == 2000


def test_download_all_bad_raises_oserror(tmp_path, monkeypatch):
    """When no mirror serves the right bytes _download raises OSError naming each mirror's problem."""
    serve(monkeypatch, [b"x", urllib.error.URLError("offline")])
    dest = tmp_path / "file.gz"
    with pytest.raises(OSError, match=r"could not download file.gz.*checksum mismatch.*offline"):
        data_mod._download("file.gz", hashlib.md5(b"y").hexdigest(), dest, timeout=1.0)
    assert list(tmp_path.iterdir()) == []


class BrokenResponse(io.RawIOBase):
    """A response whose connection drops after some bytes."""

    def __init__(self):
        self.sent = False

    def readable(self):
        return True

    def readinto(self, buffer):
        if not self.sent:
            self.sent = True
            buffer[:4] = b"part"
            return 4
        raise ConnectionResetError("connection reset by peer")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    """A connection dropped mid-download leaves no .part file behind in the data folder."""
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: BrokenResponse())
    dest = tmp_path / "file.gz"
    with pytest.raises(OSError, match="connection reset"):
        data_mod._download("file.gz", hashlib.md5(b"y").hexdigest(), dest, timeout=1.0)
    assert list(tmp_path.iterdir()) == []


# --- no evaluation draws from images an optimizer was meta-trained on ---------------------------------------


def _official_test_rows() -> np.ndarray:
    with gzip.open(TEST_IMAGES) as fh:
        return np.frombuffer(fh.read(), np.uint8, offset=16).reshape(10000, 784)


def _as_bytes(images: torch.Tensor) -> list[bytes]:
    return [row.tobytes() for row in (images.numpy() * 255).round().astype(np.uint8)]


@pytest.fixture
def full_root(root, monkeypatch):
    """A data folder with (small, fake) training files the loader accepts as the official ones: the full set."""
    gen = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    files = {
        "train_images": idx_bytes(gen.integers(0, 256, (30, 28, 28), dtype=np.uint8)),
        "train_labels": idx_bytes(gen.integers(0, 10, 30, dtype=np.uint8)),
    }
    patched = dict(MNIST_FILES)
    for key, body in files.items():
        name = MNIST_FILES[key][0]
        (raw / name).write_bytes(gzip.compress(body))
        patched[key] = (name, hashlib.md5((raw / name).read_bytes()).hexdigest())
    monkeypatch.setattr(data_mod, "MNIST_FILES", patched)
    return root


def test_evaluation_images_are_the_same_held_out_images_online_and_offline(root, full_root, no_network):
    """With the training files (online) evaluation draws from the same 2,000 test images as offline, never
    from the 8,000 an offline-trained optimizer saw; the ids name the images the tensors hold."""
    offline_root = root.parent / "offline"
    shutil.copytree(root / "MNIST" / "raw", offline_root / "MNIST" / "raw", ignore=shutil.ignore_patterns("train-*"))
    offline = load_mnist(offline_root, download=False, verbose=False)
    full = load_mnist(full_root, download=False, verbose=False)
    assert offline.source == "offline-sample" and full.source == "full"
    assert torch.equal(full.test_images, offline.test_images) and torch.equal(full.test_labels, offline.test_labels)
    official = _official_test_rows()
    for data in (offline, full):
        ids = data.test_ids - data_mod.TEST_ID_OFFSET
        assert _as_bytes(data.test_images) == [official[i].tobytes() for i in ids.tolist()]
    offline_seen = data_mod.record_ids(offline.training_record())
    assert torch.equal(offline_seen.sort().values, offline.train_ids.sort().values)
    assert not set(_as_bytes(offline.train_images)) & set(_as_bytes(full.test_images))
    assert len(full.train_labels) == 30 and torch.equal(full.train_ids, torch.arange(30))
    for data in (offline, full):  # an optimizer meta-trained on either may be evaluated on either
        for record in (offline.training_record(), full.training_record()):
            data_mod.check_unseen(record, data)
        data_mod.check_unseen(None, data)  # a checkpoint from before the records: the offline sample


def test_evaluation_on_seen_images_is_refused(no_network):
    """Evaluation images that include meta-training images (the old online test split) are a ValueError."""
    offline = load_mnist(download=False, verbose=False)
    whole_test_set = data_mod.MNISTData(
        offline.train_images, offline.train_labels, offline.train_images, offline.train_labels, "full",
        torch.arange(8000), torch.arange(10000) + data_mod.TEST_ID_OFFSET,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"meta-trained on 8000 of the 10000 images.*held-out"):
        data_mod.check_unseen(offline.training_record(), whole_test_set)
    with pytest.raises(ValueError, match="names no known MNIST images"):
        data_mod.check_unseen({"source": "somewhere"}, offline)


# --- torchvision: the same files, names and checksums as torchvision.datasets.MNIST, and the same arrays --------------


def test_file_table_is_torchvisions():
    """The four files and their md5s are torchvision.datasets.MNIST's, in its order (training first)."""
    from torchvision.datasets import MNIST

    assert [tuple(entry) for entry in MNIST.resources] == list(MNIST_FILES.values())
    assert MNIST_MIRRORS[0] == MNIST.mirrors[0]


def test_torchvision_reads_a_full_folder_as_it_is_and_decodes_the_same_arrays(full_root, monkeypatch, no_network):
    """A folder holding the full set serves torchvision.datasets.MNIST(download=True) with no network access (it finds
    the files by md5 and unpacks them); its uint8 images and int64 labels are read_idx's, and load_mnist's float
    images are exactly torchvision's divided by 255, test images at the held-out positions."""
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "resources", list(data_mod.MNIST_FILES.values()))
    raw = full_root / "MNIST" / "raw"
    data = load_mnist(full_root, download=False, verbose=False)
    for train, prefix in ((True, "train"), (False, "t10k")):
        split = MNIST(str(full_root), train=train, download=True)
        images, labels = (
            read_idx(raw / f"{prefix}-images-idx3-ubyte.gz"),
            read_idx(raw / f"{prefix}-labels-idx1-ubyte.gz"),
        )
        assert split.data.dtype == torch.uint8 and torch.equal(split.data, torch.from_numpy(images.copy()))
        assert split.targets.dtype == torch.int64 and torch.equal(
            split.targets, torch.from_numpy(labels.astype(np.int64))
        )
        as_floats = split.data.reshape(len(split.data), 784).float() / 255
        if train:
            assert torch.equal(data.train_images, as_floats) and torch.equal(data.train_labels, split.targets)
        else:
            held_out = data.test_ids - data_mod.TEST_ID_OFFSET
            assert torch.equal(data.test_images, as_floats[held_out])
            assert torch.equal(data.test_labels, split.targets[held_out])
