"""MNIST from the standard IDX files, with checksums (paper, Section 3.2; notebook 06).

Where the data comes from, in order:

1. the full official set (60,000 training and 10,000 test images) if its four files are in
   ``<root>/MNIST/raw`` with the right md5;
2. otherwise, when online and downloads are allowed, the two missing training files are fetched
   from the standard mirrors into that folder and checked;
3. otherwise the project's shipped offline sample: the official 10,000-image test set, split by a
   fixed permutation into disjoint parts for meta-training (8,000) and held-out evaluation (2,000).

Evaluation images are the same 2,000 in both cases: the official test images at the permutation's
held-out positions. With the full set, meta-training uses the 60,000 training images and the other 8,000
test images are used by nothing, so an optimizer meta-trained offline (on those 8,000) is never evaluated
on an image it has seen, online or offline. Each optimizer records which images it was meta-trained on
(:meth:`MNISTData.training_record`, stored by ``l2l train``) and :func:`check_unseen` refuses an evaluation
that would draw from them.

``MNISTData.source`` says which one is in use, and :func:`load_mnist` prints it when it first loads it.

The folder is laid out as ``torchvision.datasets.MNIST`` expects (``<root>/MNIST/raw/*.gz``, the same file names and
md5s), but the files are read by this module's own IDX reader (:func:`read_idx`): torchvision's class reads the
uncompressed files and only when all four (training and test) are there, so it cannot read the offline sample, the
test set shipped alone; and its downloads have no time limit and write in place, where :func:`load_mnist` gives up
after ``timeout`` seconds and leaves no partial file. A folder holding the full set serves
``torchvision.datasets.MNIST(root, download=True)`` as it is: torchvision finds its files by md5 and only unpacks them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l2l_helpers import settings

#: File name and md5 of each official MNIST file.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}

#: Standard mirrors of the official files, tried in order.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: Size of the meta-training part of the offline sample; the rest is held out.
OFFLINE_TRAIN_SIZE = 8000
_OFFLINE_SPLIT_SEED = 1606_04474  # the paper's arXiv number

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def default_data_dir() -> Path:
    """``$L2L_DATA_DIR`` if set, else a checkout's ``data/`` folder, else a user cache (:func:`settings.data_dir`)."""
    return settings.data_dir()


def md5sum(path: Path) -> str:
    """Hex md5 digest of a file."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), checking its header against its size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable IDX file ({exc}); delete it and fetch it again") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number); delete it and fetch it again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{path} is truncated or corrupt ({len(raw)} bytes, header says {expected}); delete it and fetch it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


#: Global image ids: official training image k is k, official test image k is TEST_ID_OFFSET + k.
TEST_ID_OFFSET = 60_000


def offline_split() -> tuple[torch.Tensor, torch.Tensor]:
    """Positions in the official test set of the offline sample's meta-training and held-out images."""
    perm = torch.randperm(10_000, generator=torch.Generator().manual_seed(_OFFLINE_SPLIT_SEED))
    return perm[:OFFLINE_TRAIN_SIZE], perm[OFFLINE_TRAIN_SIZE:]


@dataclass
class MNISTData:
    """Images as float tensors in [0, 1] of shape (n, 784), labels as int64 tensors of shape (n,).

    ``train_ids`` and ``test_ids`` name each image globally (:data:`TEST_ID_OFFSET`); None for data built
    by hand (tests), which then has no record of where its images come from.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str  # "full" or "offline-sample"
    train_ids: torch.Tensor | None = None
    test_ids: torch.Tensor | None = None

    @property
    def description(self) -> str:
        """One line saying which data is in use."""
        n_train, n_test = len(self.train_labels), len(self.test_labels)
        if self.source == "full":
            return (
                f"MNIST: full official set: {n_train} training images for meta-training, {n_test} held-out "
                "test images for evaluation (the offline sample's held-out part)"
            )
        return (
            f"MNIST: offline sample, the official test set split into {n_train} meta-training and "
            f"{n_test} held-out images (the training files are not available: go online once to fetch them)"
        )

    def training_record(self) -> dict[str, Any]:
        """Which images meta-training on this data uses: stored with every MNIST optimizer (``l2l train``)."""
        if self.source == "full":
            return {"source": "full", "images": f"the official training set ({len(self.train_labels)} images)"}
        return {
            "source": "offline-sample",
            "images": (
                f"{len(self.train_labels)} images of the official test set (the offline split's meta-training "
                f"part, permutation seed {_OFFLINE_SPLIT_SEED})"
            ),
        }


def record_ids(record: Mapping[str, Any]) -> torch.Tensor:
    """The global ids of the images a :meth:`MNISTData.training_record` names."""
    source = record.get("source")
    if source == "full":
        return torch.arange(TEST_ID_OFFSET)
    if source == "offline-sample":
        return offline_split()[0] + TEST_ID_OFFSET
    raise ValueError(
        f"meta-training record {dict(record)!r} names no known MNIST images (source: full or offline-sample)"
    )


def check_unseen(record: Mapping[str, Any] | None, data: MNISTData, who: str = "this optimizer") -> None:
    """Raise ``ValueError`` if ``data``'s evaluation images include any image ``record`` was meta-trained on.

    ``record=None`` (a checkpoint made before records were stored: every such shipped file was meta-trained
    on the offline sample) is read as the offline sample's meta-training images.
    """
    if data.test_ids is None:
        return
    seen = record_ids(record if record is not None else {"source": "offline-sample"})
    overlap = int(torch.isin(data.test_ids, seen).sum())
    if overlap:
        raise ValueError(
            f"{who} was meta-trained on {overlap} of the {len(data.test_ids)} images it would be evaluated on; "
            "evaluate it on images it has not seen (the held-out split of load_mnist)"
        )


def _check_file(path: Path, md5: str) -> None:
    actual = md5sum(path)
    if actual != md5:
        raise ValueError(
            f"{path} is corrupt (md5 {actual}, expected {md5}): delete it; then either go online so it "
            "is downloaded again, or copy the official file back in place"
        )


def _download(name: str, md5: str, dest: Path, timeout: float) -> None:
    """Fetch one official MNIST file into ``dest`` from the first mirror serving it intact."""
    _download_from(MNIST_MIRRORS, name, md5, dest, timeout)


def _download_from(mirrors: tuple[str, ...], name: str, md5: str, dest: Path, timeout: float) -> None:
    """Fetch ``name`` into ``dest`` (its folder made if missing) from the first of ``mirrors`` serving it intact."""
    dest.parent.mkdir(parents=True, exist_ok=True)  # an installed copy downloads into a cache folder not made yet
    errors = []
    for mirror in mirrors:
        tmp = None
        try:
            with urllib.request.urlopen(mirror + name, timeout=timeout) as response:
                fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
                with os.fdopen(fd, "wb") as fh:
                    shutil.copyfileobj(response, fh)
            if md5sum(Path(tmp)) != md5:
                errors.append(f"{mirror}: checksum mismatch")
                continue
            os.replace(tmp, dest)
            tmp = None
            return
        except OSError as exc:
            errors.append(f"{mirror}: {exc}")
        finally:  # a failed or interrupted download leaves no partial file behind
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    raise OSError(f"could not download {name}: " + "; ".join(errors))


def _tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


_CACHE: dict[tuple[str, bool], MNISTData] = {}


def load_mnist(
    root: str | Path | None = None, download: bool | None = None, verbose: bool = True, timeout: float = 10.0
) -> MNISTData:
    """Load MNIST (see the module docstring for where it comes from), caching it in memory.

    ``download=None`` downloads unless the environment variable ``L2L_OFFLINE`` is set to 1.
    Raises ``FileNotFoundError`` (what to do) if no usable files are found and ``ValueError`` for a
    corrupt file.
    """
    explicit = root is not None
    root = Path(root) if root is not None else default_data_dir()
    if download is None:
        download = not settings.offline()
    key = (str(root.resolve()), bool(download))
    if key in _CACHE:  # already loaded (and announced) in this process
        return _CACHE[key]
    raw = root / "MNIST" / "raw"
    paths = {k: raw / name for k, (name, _) in MNIST_FILES.items()}
    for k in ("test_images", "test_labels"):
        shipped = settings.assets_dir() / "MNIST" / "raw" / paths[k].name
        if not paths[k].exists() and not explicit and shipped.exists():
            paths[k] = shipped  # the test set that ships with the package
        if not paths[k].exists():
            raise FileNotFoundError(
                f"{paths[k]} is missing. The package ships the MNIST test set (data/MNIST/raw in a checkout: "
                "restore it with `git checkout data/`), or set L2L_DATA_DIR to a folder holding MNIST/raw/."
            )
        _check_file(paths[k], MNIST_FILES[k][1])

    have_train = all(paths[k].exists() for k in ("train_images", "train_labels"))
    if not have_train and download:
        try:
            for k in ("train_images", "train_labels"):
                if not paths[k].exists():
                    name, md5 = MNIST_FILES[k]
                    if verbose:
                        print(f"MNIST: downloading {name} ...")
                    _download(name, md5, paths[k], timeout)
            have_train = True
        except OSError as exc:
            if verbose:
                print(f"MNIST: download failed ({exc}); using the offline sample")
    test_x, test_y = _tensors(read_idx(paths["test_images"]), read_idx(paths["test_labels"]))
    tr, ho = offline_split()  # the held-out test images are the same with or without the training files
    if have_train:
        for k in ("train_images", "train_labels"):
            _check_file(paths[k], MNIST_FILES[k][1])
        train_x, train_y = _tensors(read_idx(paths["train_images"]), read_idx(paths["train_labels"]))
        ids = torch.arange(len(train_y))
        data = MNISTData(train_x, train_y, test_x[ho], test_y[ho], "full", ids, ho + TEST_ID_OFFSET)
    else:
        data = MNISTData(
            test_x[tr], test_y[tr], test_x[ho], test_y[ho], "offline-sample", tr + TEST_ID_OFFSET, ho + TEST_ID_OFFSET
        )
    _CACHE[key] = data
    if verbose:
        print(data.description)
    return data
