"""Image datasets for the convolutional optimizees (Section 3.3; notebook 10): Fashion-MNIST, offline and in CI.

The paper's convnet experiment uses CIFAR-10; this project runs the same experiment offline on Fashion-MNIST
(Zalando, MIT licence), 28x28 grey images of ten kinds of clothing. Where the data comes from, in order:

1. the full set (60,000 training and 10,000 test images) where Debian's ``dataset-fashion-mnist`` package put it,
   ``/usr/share/datasets/fashion-mnist``, or in ``<data>/FashionMNIST/raw``;
2. otherwise, online and when downloads are allowed, the two training files fetched from the dataset's repository
   into ``<data>/FashionMNIST/raw`` and checked by md5;
3. otherwise the shipped test set (``data/FashionMNIST/raw``), split by a fixed permutation into 8,000 images for
   meta-training and 2,000 held out, as for MNIST (:mod:`~l2l_helpers.optimizees.data`).

Evaluation images are the same 2,000 in every case (the permutation's held-out test images), so an optimizer
meta-trained offline is never evaluated on an image it has seen, online or offline.

Fashion-MNIST is read by the IDX reader of :mod:`~l2l_helpers.optimizees.data`, not by
``torchvision.datasets.FashionMNIST``:
that class reads the uncompressed files and only when all four (training and test) are in ``FashionMNIST/raw``, so it
cannot read the shipped test set alone; its md5 table is that of the gzip files on its own mirror, which differ from
the files shipped here and installed by Debian, so it would discard them and download again; and it does not look in
Debian's folder, which holds the four files without the ``FashionMNIST/raw`` layout.

CIFAR-10, the paper's dataset, is read by ``torchvision.datasets.CIFAR10`` (every batch checked by md5) from its
unpacked folder ``cifar-10-batches-py``; the official tarball (``cifar-10-python.tar.gz``), when it is on disk or can be
downloaded, is unpacked there first (:func:`load_cifar10`). :func:`load_conv_data` picks CIFAR-10 where it is on disk
and Fashion-MNIST otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from l2l_helpers import settings
from l2l_helpers.optimizees.data import _check_file, _download_from, md5sum, offline_split, read_idx

#: File name and md5 of each file, as the dataset's repository (zalandoresearch/fashion-mnist, data/fashion) and
#: Debian's package ship them.
FASHION_FILES: dict[str, tuple[str, str]] = {
    "train_images": ("train-images-idx3-ubyte.gz", "cf8536b0aa1a6ac5fa3f23001093305c"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "10bea18fdb374794d4bb42e356e600c9"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "f78720b4224f21cce2f2ccf2d7a94c9a"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "0d30e22e447f3c33dab9ed536400ac01"),
}
FASHION_MIRRORS = ("https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",)
#: Where Debian's dataset-fashion-mnist package installs the full set.
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


@dataclass
class ImageData:
    """Images as float tensors in [0, 1] of shape (n, C, H, W), labels as int64 tensors (n,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    description: str
    classes: tuple[str, ...]


_CACHE: dict[tuple[str, str, bool], ImageData] = {}


def load_fashion_mnist(
    root: str | Path | None = None,
    download: bool | None = None,
    verbose: bool = True,
    timeout: float = 10.0,
    system_dir: str | Path | None = DEBIAN_FASHION,
) -> ImageData:
    """Fashion-MNIST (see the module docstring for where it comes from) as (n, 1, 28, 28) images, cached in memory.

    ``root`` holds ``FashionMNIST/raw`` (default: the project's data folder, :func:`settings.data_dir`);
    ``system_dir`` is where a system package keeps the full set (None: look nowhere else). ``download=None``
    downloads unless ``L2L_OFFLINE=1``. ``FileNotFoundError`` says what to do when even the test set is missing,
    ``ValueError`` names a corrupt file.
    """
    explicit = root is not None
    root = Path(root) if root is not None else settings.data_dir()
    download = not settings.offline() if download is None else download
    key = (str(root.resolve()), str(system_dir), bool(download))
    if key in _CACHE:
        return _CACHE[key]
    raw = root / "FashionMNIST" / "raw"
    folders = [raw] + ([Path(system_dir)] if system_dir is not None else [])
    if not explicit:
        folders.append(settings.assets_dir() / "FashionMNIST" / "raw")  # the test set an installed package carries

    def find(part: str) -> Path | None:
        name = FASHION_FILES[part][0]
        return next((folder / name for folder in folders if (folder / name).is_file()), None)

    paths = {part: find(part) for part in FASHION_FILES}
    for part in ("test_images", "test_labels"):
        if paths[part] is None:
            raise FileNotFoundError(
                f"Fashion-MNIST's {FASHION_FILES[part][0]} is in none of {', '.join(map(str, folders))}. The project "
                "ships the test set in data/FashionMNIST/raw (restore it with `git checkout data/`), Debian's "
                "dataset-fashion-mnist package installs the full set, or set L2L_DATA_DIR to a folder holding "
                "FashionMNIST/raw/."
            )
    train_parts = ("train_images", "train_labels")
    if any(paths[p] is None for p in train_parts) and download:
        try:
            for part in train_parts:
                if paths[part] is None:
                    name, md5 = FASHION_FILES[part]
                    if verbose:
                        print(f"Fashion-MNIST: downloading {name} ...")
                    _download_from(FASHION_MIRRORS, name, md5, raw / name, timeout)
                    paths[part] = raw / name
        except OSError as exc:
            if verbose:
                print(f"Fashion-MNIST: download failed ({exc}); using the offline sample")
    for part, path in paths.items():
        if path is not None:
            _check_file(path, FASHION_FILES[part][1])
    test_x, test_y = _images(paths["test_images"]), _labels(paths["test_labels"])
    tr, ho = offline_split()  # the held-out test images are the same with or without the training files
    if all(paths[p] is not None for p in train_parts):
        where = paths["train_images"].parent
        data = ImageData(
            _images(paths["train_images"]),
            _labels(paths["train_labels"]),
            test_x[ho],
            test_y[ho],
            "full",
            f"Fashion-MNIST: full set from {where}: 60000 training images for meta-training, {len(ho)} held-out test "
            "images for evaluation",
            FASHION_CLASSES,
        )
    else:
        data = ImageData(
            test_x[tr],
            test_y[tr],
            test_x[ho],
            test_y[ho],
            "offline-sample",
            f"Fashion-MNIST: offline sample, the official test set split into {len(tr)} meta-training and {len(ho)} "
            "held-out images (the training files are not available: install Debian's dataset-fashion-mnist or go "
            "online once)",
            FASHION_CLASSES,
        )
    _CACHE[key] = data
    if verbose:
        print(data.description)
    return data


def _images(path: Path) -> torch.Tensor:
    array = read_idx(path)  # (n, 28, 28) uint8
    return torch.from_numpy(array.astype("float32") / 255.0).unsqueeze(1)


def _labels(path: Path) -> torch.Tensor:
    return torch.from_numpy(read_idx(path).astype("int64"))


# --------------------------------------------------------------------------------------------
# CIFAR-10 (the paper's dataset for Section 3.3), read by torchvision.datasets.CIFAR10

#: The official python tarball and its md5 (torchvision.datasets.CIFAR10's: ``filename``, ``tgz_md5``, ``url``).
CIFAR_TARBALL = ("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_HOW = (
    f"download {CIFAR_URL} (163 MB) into {{root}}, or call l2l.load_cifar10(download=True) online; offline, the same "
    "experiment runs on Fashion-MNIST (dataset='fashion_mnist')"
)


def cifar10_on_disk(root: str | Path | None = None) -> Path | None:
    """The CIFAR-10 unpacked folder or tarball under ``root`` (default: the data folder), or None."""
    root = Path(root) if root is not None else settings.data_dir()
    for candidate in (root / CIFAR_FOLDER, root / CIFAR_TARBALL[0]):
        if candidate.exists():
            return candidate
    return None


def _cifar10_split(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of the unpacked set, read by torchvision (every batch checked by md5): images (n, 3, 32, 32) in
    [0, 1], labels (n,); a missing or corrupt file is a ``ValueError`` that names it."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    try:
        split = CIFAR10(str(root), train=train)
    except RuntimeError as exc:  # torchvision says "not found or corrupted" without naming the file
        folder = root / CIFAR10.base_folder
        listed = [*CIFAR10.train_list, *CIFAR10.test_list, [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
        for name, md5 in listed:
            if not (folder / name).is_file():
                raise ValueError(
                    f"{folder} holds no {name}: unpack the whole tarball there, or delete the folder"
                ) from exc
            if not check_integrity(str(folder / name), md5):
                raise ValueError(
                    f"{folder / name} is corrupt (md5 mismatch): delete {folder} and unpack or download "
                    "the tarball again"
                ) from exc
        raise
    images = np.ascontiguousarray(split.data.transpose(0, 3, 1, 2))  # torchvision's (n, 32, 32, 3) as (n, 3, 32, 32)
    return torch.from_numpy(images.astype("float32") / 255.0), torch.tensor(split.targets, dtype=torch.long)


def _unpack_cifar10(tarball: Path, root: Path) -> None:
    """Unpack the official tarball into ``root`` with torchvision, after checking its md5."""
    from torchvision.datasets.utils import check_integrity, extract_archive

    if not check_integrity(str(tarball), CIFAR_TARBALL[1]):
        raise ValueError(
            f"{tarball} is corrupt or partial (md5 {md5sum(tarball)}, expected {CIFAR_TARBALL[1]}): delete it and "
            f"download {CIFAR_URL} again"
        )
    extract_archive(str(tarball), str(root))


def _download_cifar10(root: Path) -> None:
    """Download and unpack the tarball into ``root`` through torchvision; a failed download leaves no partial file."""
    from torchvision.datasets import CIFAR10

    tarball = root / CIFAR_TARBALL[0]
    try:
        CIFAR10(str(root), train=False, download=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a checksum mismatch a RuntimeError
        if tarball.is_file() and md5sum(tarball) != CIFAR_TARBALL[1]:
            tarball.unlink()
        raise FileNotFoundError(f"CIFAR-10 could not be downloaded ({exc}): " + CIFAR_HOW.format(root=root)) from exc


def load_cifar10(root: str | Path | None = None, download: bool | None = None, verbose: bool = True) -> ImageData:
    """CIFAR-10 as (n, 3, 32, 32) images: the 50,000 training images for meta-training, and the same 2,000 test images
    as Fashion-MNIST's held-out ones (the offline permutation's) for evaluation; cached in memory.

    torchvision.datasets.CIFAR10 reads ``root/cifar-10-batches-py`` (default root: the data folder); a tarball
    ``root/cifar-10-python.tar.gz`` is unpacked there first, and with neither torchvision downloads the tarball when
    ``download`` (None: unless ``L2L_OFFLINE=1``). ``FileNotFoundError`` says how to get it, ``ValueError`` names a
    corrupt or partial file.
    """
    root = Path(root) if root is not None else settings.data_dir()
    download = not settings.offline() if download is None else download
    key = (str(root.resolve()), "cifar10", False)
    if key in _CACHE:
        return _CACHE[key]
    found = cifar10_on_disk(root)
    if found is None:
        if not download:
            raise FileNotFoundError(f"CIFAR-10 is not in {root}: " + CIFAR_HOW.format(root=root))
        if verbose:
            print(f"CIFAR-10: downloading {CIFAR_TARBALL[0]} (163 MB) ...")
        _download_cifar10(root)
    elif found.name == CIFAR_TARBALL[0]:
        _unpack_cifar10(found, root)
    train_x, train_y = _cifar10_split(root, train=True)
    test_x, test_y = _cifar10_split(root, train=False)
    _, ho = offline_split()
    data = ImageData(
        train_x,
        train_y,
        test_x[ho],
        test_y[ho],
        "cifar10",
        f"CIFAR-10 from {root / CIFAR_FOLDER}: 50000 training images for meta-training, {len(ho)} held-out test "
        "images for evaluation",
        CIFAR_CLASSES,
    )
    _CACHE[key] = data
    if verbose:
        print(data.description)
    return data


#: The datasets the conv problem runs on; "auto" is CIFAR-10 where it is on disk, else Fashion-MNIST.
CONV_DATASETS = ("auto", "fashion_mnist", "cifar10")


def load_conv_data(dataset: str = "auto", verbose: bool = True) -> ImageData:
    """The images of the conv problem: ``"cifar10"`` (the paper's), ``"fashion_mnist"`` (offline and in CI) or
    ``"auto"`` (CIFAR-10 when its files are on disk, Fashion-MNIST otherwise, saying so)."""
    if dataset not in CONV_DATASETS:
        raise ValueError(f"dataset={dataset!r} is unknown; use one of: {', '.join(CONV_DATASETS)}")
    if dataset == "cifar10" or (dataset == "auto" and cifar10_on_disk() is not None):
        return load_cifar10(verbose=verbose)
    if dataset == "auto" and verbose:
        print(
            "CIFAR-10, the paper's dataset, is not on disk: this run uses Fashion-MNIST. For CIFAR-10, put "
            f"{CIFAR_TARBALL[0]} in {settings.data_dir()} (or call l2l.load_cifar10(download=True) once online)."
        )
    return load_fashion_mnist(verbose=verbose)
