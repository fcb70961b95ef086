"""Image datasets for the convolutional optimizees (Section 3.3; notebook 10): Fashion-MNIST, offline and in CI.

The paper's convnet experiment uses CIFAR-10; this project runs the same experiment offline on Fashion-MNIST
(Zalando, MIT licence), 28x28 grey images of ten kinds of clothing. Where the data comes from, in order:

1. the full set (60,000 training and 10,000 test images) where Debian's ``dataset-fashion-mnist`` package put it,
   ``/usr/share/datasets/fashion-mnist``, or in ``<data>/FashionMNIST/raw``;
2. otherwise, online and when downloads are allowed, the two training files fetched from the dataset's repository
   into ``<data>/FashionMNIST/raw`` and checked by md5;
3. otherwise the shipped test set (``data/FashionMNIST/raw``), split by a fixed permutation into 8,000 images for
   meta-training and 2,000 held out, as for MNIST (:mod:`~l2l_helpers.data`).

Evaluation images are the same 2,000 in every case (the permutation's held-out test images), so an optimizer
meta-trained offline is never evaluated on an image it has seen, online or offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import settings
from .data import _check_file, _download_from, offline_split, read_idx

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
