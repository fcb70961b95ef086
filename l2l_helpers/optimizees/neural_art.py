"""Neural art as an optimizee: the image is theta, f is a content + style loss (paper, Section 3.4; notebook 09).

The loss follows Gatys et al.: the content term compares feature maps of a convolutional network on
the image and on a content photo; the style term compares Gram matrices of feature maps with those of a
painting. The default feature network is a fixed, seeded, random-weight multi-scale convolutional
network (random-feature style losses are a published, working alternative to VGG), so everything runs
offline on a CPU. ``features="vgg19"`` uses Gatys et al.'s network, torchvision's ImageNet VGG-19, whose weights
torchvision downloads once into torch hub's checkpoints folder (:func:`vgg19_weights_file`).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from l2l_helpers import settings
from l2l_helpers.kernels.plain import swappable
from l2l_helpers.optimizees.base import LOCKED_SPLIT, SPLIT_OFFSETS, SPLIT_SIZE, Problem, TaskBatch

#: Content photos by split. ``train``, ``val`` and ``dev`` are photos that ship inside scikit-image
#: (:data:`SKIMAGE_PHOTOS`): the synthetic colour wheel and the retina scan only validate; ``dev``, the two everyday
#: scenes (a cat, a motorcycle), is what development evaluates on. ``test``, the locked split the claims are measured
#: on, is everyday photographs like the paper's ImageNet test images (an animal, a person, landscapes, objects,
#: plants), stored in ``data/photos`` with their sources and licences (``data/photos/README.md``). No photo, and no
#: copy of one, is in two splits.
CONTENT_PHOTOS: dict[str, tuple[str, ...]] = {
    "train": ("astronaut", "coffee", "rocket", "immunohistochemistry"),
    "val": ("hubble_deep_field", "colorwheel", "retina"),
    "dev": ("chelsea", "stereo_motorcycle"),
    "test": (
        "raccoon",
        "grace_hopper",
        "china",
        "flower",
        "evening_glow",
        "colorful_cups",
        "forest_path",
        "fallen_leaf",
        "ladybird",
        "dune",
    ),
}
#: The photos :func:`load_photo` reads from scikit-image (``skimage.data``, files inside the installed package).
SKIMAGE_PHOTOS: tuple[str, ...] = (*CONTENT_PHOTOS["train"], *CONTENT_PHOTOS["val"], *CONTENT_PHOTOS["dev"])

#: Baselines' learning rates for neural art: 1e-3 .. 1e2 in half decades. Pixel gradients are small, so
#: SGD and NAG want rates beyond the usual grid's top (10), where they would sit on its edge.
NEURAL_ART_LR_GRID: tuple[float, ...] = tuple(round(10.0 ** (k / 2), 10) for k in range(-6, 5))


class RandomFeatures(torch.nn.Module):
    """A fixed multi-scale convolutional feature extractor with seeded random (He-normal) weights."""

    #: Its forward is the one ``kernels/style_loss.py`` differentiates by hand (3x3 convolutions, padding 1, ReLU,
    #: 2x2 average pooling between scales); a subclass that changes the forward sets this to False.
    style_loss_kernel = True

    def __init__(self, channels: Sequence[int] = (32, 64, 128), seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        weights, c_in = [], 3
        for c_out in channels:
            w = torch.randn(c_out, c_in, 3, 3, generator=gen) * math.sqrt(2.0 / (9 * c_in))
            weights.append(torch.nn.Parameter(w, requires_grad=False))
            c_in = c_out
        self.weights = torch.nn.ParameterList(weights)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at every scale for images (B, 3, H, W) in [0, 1].

        The convolutions run channels-last: measured 1.5x faster than the default layout on a 2-core CPU
        (oneDNN's preferred layout), with the same result to float rounding.
        """
        x, feats = (images - 0.5).contiguous(memory_format=torch.channels_last), []
        for i, w in enumerate(self.weights):
            if i:
                x = F.avg_pool2d(x, 2)
            x = F.relu(F.conv2d(x, w, padding=1))
            feats.append(x)
        return feats


def vgg19_weights_file() -> Path:
    """Where torchvision keeps VGG-19's ImageNet weights: torch hub's checkpoints folder, ``vgg19-dcbb9e9d.pth``."""
    from torchvision.models import VGG19_Weights

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG19_Weights.IMAGENET1K_V1.url).name


def _pretrained_vgg19() -> torch.nn.Module:
    """torchvision's VGG-19 with its ImageNet weights, read from torch hub's checkpoints folder or downloaded there by
    torchvision (never with ``L2L_OFFLINE=1``); a one-line ``FileNotFoundError`` says where to put the file."""
    from torchvision.models import VGG19_Weights, vgg19

    weights, path = VGG19_Weights.IMAGENET1K_V1, vgg19_weights_file()
    how = f"put {path.name} ({weights.url}) in {path.parent}, or use features='random'"
    present = path.is_file()
    if not present and settings.offline():
        raise FileNotFoundError(f"VGG-19's ImageNet weights {path.name} are missing and L2L_OFFLINE=1: {how}")
    try:
        return vgg19(weights=weights)  # downloads into torch hub's checkpoints folder when the file is not there
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # no network, a bad hash, a bad file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if present:
            raise ValueError(f"{path} is not a readable VGG-19 checkpoint ({reason}): delete it; then {how}") from exc
        raise FileNotFoundError(
            f"VGG-19's ImageNet weights {path.name} could not be downloaded ({reason}): {how}"
        ) from exc


class VGGFeatures(torch.nn.Module):
    """relu1_1, relu2_1 and relu3_1 of VGG-19 (torchvision), frozen: Gatys et al.'s feature network (Section 3.4).

    ``pretrained=True`` loads the ImageNet weights (:func:`_pretrained_vgg19`); ``False`` keeps torchvision's random
    initialisation (the same network offline, for tests).
    """

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        from torchvision.models import vgg19

        net = _pretrained_vgg19() if pretrained else vgg19(weights=None)
        layers = net.features[:12].eval()  # conv1_1 .. relu3_1
        for param in layers.parameters():
            param.requires_grad_(False)
        self.layers, self.taps, self.pretrained = layers, (1, 6, 11), pretrained
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at the three taps for images (B, 3, H, W) in [0, 1]: (B, 64, H, W), (B, 128, H/2, W/2) and
        (B, 256, H/4, W/4)."""
        x, feats = (images - self.mean) / self.std, []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
        return feats


def make_features(kind: str = "random", seed: int = 0) -> tuple[torch.nn.Module, str]:
    """The feature network and a line saying which one is used: ``"random"`` (seeded random-weight convnet) or
    ``"vgg19"`` (ImageNet VGG-19; its weights file must be at hand or downloadable, else a one-line error)."""
    if kind == "random":
        return RandomFeatures(seed=seed), "features: seeded random-weight convolutional network"
    if kind != "vgg19":
        raise ValueError(f"features={kind!r} is unknown; use 'random' or 'vgg19'")
    return VGGFeatures(), "features: ImageNet-pretrained VGG-19 (torchvision)"


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrices (B, C, C) of feature maps (B, C, H, W), normalized by C * H * W: G[c, d] = sum over pixels of
    F[c] F[d] / (C H W).

    The maps are read as X (B, HW, C), a view without a copy where they are channels-last (the layout
    :class:`RandomFeatures` computes in), and G = X^T X / n; autograd differentiates it.
    """
    b, c, h, w = feat.shape
    if feat.is_contiguous(memory_format=torch.channels_last):
        flat = feat.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view: (B, HW, C)
    else:
        flat = feat.reshape(b, c, h * w).transpose(1, 2)
    return flat.transpose(1, 2) @ flat / (c * h * w)  # (B, C, C)


def photos_dir() -> Path:
    """The shipped content photos that are not part of scikit-image: ``data/photos`` (``<name>.jpg``)."""
    return settings.assets_dir() / "photos"


def known_photos() -> list[str]:
    """Every name :func:`load_photo` reads: scikit-image's photos and the files in :func:`photos_dir`."""
    return sorted({*SKIMAGE_PHOTOS, *(p.stem for p in photos_dir().glob("*.jpg"))})


def load_photo(name: str) -> torch.Tensor:
    """A content photo as a float tensor (3, H, W) in [0, 1]: ``data/photos/<name>.jpg`` or a scikit-image photo
    (``skimage.data.<name>()``); a ``ValueError`` lists the known names for any other."""
    path = photos_dir() / f"{name}.jpg"
    if path.is_file():
        from PIL import Image

        with Image.open(path) as image:
            img = np.array(image.convert("RGB"))
    elif name in SKIMAGE_PHOTOS:
        import skimage.data

        img = getattr(skimage.data, name)()
        if isinstance(img, tuple):  # stereo_motorcycle: (left view, right view, disparity): the left view
            img = img[0]
    else:
        raise ValueError(f"photo={name!r} is unknown; known photos: {', '.join(known_photos())}")
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return torch.from_numpy(np.ascontiguousarray(img[..., :3])).permute(2, 0, 1).float() / 255.0


def _choose_photo(split: str, seed: int, gen: torch.Generator) -> str:
    """The content photo of the task with this seed, drawn first from its generator ``gen``.

    Every split draws a photo index from the seed; ``train``, ``val`` and ``dev`` use it, while the locked split
    cycles through its photos by task index (task i: photo i mod the number of photos), so that n tasks cover
    them evenly. The crop that follows is drawn from the same generator in every split.
    """
    names = CONTENT_PHOTOS[split]
    drawn = int(torch.randint(len(names), (1,), generator=gen))
    if split == LOCKED_SPLIT:
        return names[(seed - SPLIT_OFFSETS[split]) % len(names)]
    return names[drawn]


def task_photos(split: str, indices: Iterable[int]) -> list[str]:
    """The content photo of each task ``indices`` of ``split``, as :attr:`NeuralArtTasks.photos` names it, without
    drawing the tasks or loading a photo (and without unlocking the locked split: it reads only the photo choice)."""
    if split not in CONTENT_PHOTOS:
        raise ValueError(f"split={split!r} is unknown; use one of: {', '.join(CONTENT_PHOTOS)}")
    names = []
    for i in indices:
        if not 0 <= int(i) < SPLIT_SIZE:
            raise ValueError(f"task index {i} is out of range [0, {SPLIT_SIZE})")
        seed = SPLIT_OFFSETS[split] + int(i)
        names.append(_choose_photo(split, seed, torch.Generator().manual_seed(seed)))
    return names


def load_style(name: str = "starry_night", size: int = 64) -> torch.Tensor:
    """A painting from ``data/styles`` resized to ``size`` x ``size``: tensor (3, size, size) in [0, 1]."""
    from PIL import Image

    styles = settings.styles_dir()
    path = styles / f"{name}.jpg"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in styles.glob("*.jpg"))) or "none"
        raise ValueError(f"style={name!r} not found in {styles}; available: {known}")
    img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.0


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels, per image (B,): penalises high-frequency noise."""
    dx = (images[..., :, 1:] - images[..., :, :-1]) ** 2
    dy = (images[..., 1:, :] - images[..., :-1, :]) ** 2
    return dx.mean(dim=(1, 2, 3)) + dy.mean(dim=(1, 2, 3))


class NeuralArtTasks(TaskBatch):
    """One image per task, styled after the same painting; theta is its pixels, flattened (3 * size * size).

    ``photos`` names each task's content photo (:func:`task_photos` gives the same names without drawing tasks).
    """

    def __init__(self, problem: NeuralArtProblem, seeds: list[int], split: str, device: torch.device) -> None:
        self.problem, self.seeds, self.device = problem, seeds, device
        size = problem.size
        self.dim = 3 * size * size
        contents: list[torch.Tensor] = []
        self.photos: list[str] = []  # the content photo of each task
        for seed in seeds:  # each task: a random square crop of one of the split's photos, resized
            gen = torch.Generator().manual_seed(seed)
            self.photos.append(_choose_photo(split, seed, gen))
            photo = problem.photo(self.photos[-1])
            side = min(photo.shape[1:])
            crop = int(torch.randint(side // 3, side + 1, (1,), generator=gen))
            top = int(torch.randint(0, photo.shape[1] - crop + 1, (1,), generator=gen))
            left = int(torch.randint(0, photo.shape[2] - crop + 1, (1,), generator=gen))
            patch = photo[:, top : top + crop, left : left + crop].unsqueeze(0)
            contents.append(F.interpolate(patch, size=(size, size), mode="area")[0])
        self.content = torch.stack(contents).to(device)  # (B, 3, size, size)
        feats = problem.features.to(device)
        with torch.no_grad():
            self.style_grams = [gram(f) for f in feats(problem.style_image().unsqueeze(0).to(device))]
            content_feats = feats(self.content)
            self.content_feat = content_feats[problem.content_layer]
            self.photo_style = style_term(content_feats, self.style_grams)  # (B,): the photos' own, for style_ratio

    def init_theta(self) -> torch.Tensor:
        return self.content.reshape(self.n_tasks, -1).clone()  # start from the content photo

    def images(self, theta: torch.Tensor) -> torch.Tensor:
        """theta (B, 3 * size * size) as images (B, 3, size, size)."""
        return theta.view(-1, 3, self.problem.size, self.problem.size)

    def style_loss(self, theta: torch.Tensor) -> torch.Tensor:
        """The style term alone, unweighted, per image (B,): the image's Gram matrices against the painting's."""
        self.copies(theta)  # a clear error for a wrong shape
        with torch.no_grad():
            return style_term(self.problem.features(self.images(theta)), self.style_grams)

    def style_ratio(self, theta: torch.Tensor) -> torch.Tensor:
        """Style loss of each image relative to its content photo's own, per image (B,): 1 is the photo untouched,
        a few percent is an image that carries the painting's colours and texture (notebook 09 prints it beside
        every picture; the number says how styled a result is where a faint tint and a painted photo look alike to
        the loss curves)."""
        copies = self.copies(theta)
        return self.style_loss(theta) / self.photo_style.repeat(copies)

    def loss(self, theta: torch.Tensor, step: int = 0) -> torch.Tensor:
        p = self.problem
        copies = self.copies(theta)
        target = self.content_feat if copies == 1 else self.content_feat.repeat(copies, 1, 1, 1)
        coefficients = (p.content_weight, p.style_weight, p.tv_weight)
        return style_content_loss(
            self.images(theta), p.features, target, self.style_grams, p.content_layer, coefficients
        )


@swappable("style_loss")
def style_content_loss(
    images: torch.Tensor,
    features: torch.nn.Module,
    content_target: torch.Tensor,
    style_grams: Sequence[torch.Tensor],
    content_layer: int,
    coefficients: tuple[float, float, float],
) -> torch.Tensor:
    """Gatys et al.'s loss per image (B,) of ``images`` (B, 3, H, W): ``a * content + b * style + c * TV`` with
    ``coefficients`` (a, b, c). Content: the squared difference of layer ``content_layer``'s maps from the photo's;
    style: every layer's Gram matrix against the painting's (:func:`style_term`); TV: :func:`total_variation`.
    Autograd differentiates it; for :class:`RandomFeatures` ``kernels/style_loss.py`` swaps in a hand-written image
    gradient (``L2L_PLAIN=style_loss`` pins this one)."""
    a, b, c = coefficients
    feats = features(images)
    content = ((feats[content_layer] - content_target) ** 2).mean(dim=(1, 2, 3))
    total = a * content + b * style_term(feats, style_grams)
    if c:
        total = total + c * total_variation(images)
    return total


def style_term(feats: Sequence[torch.Tensor], style_grams: Sequence[torch.Tensor]) -> torch.Tensor:
    """Unweighted style loss (B,) of feature maps: their Gram matrices against the painting's over all scales."""
    return sum(((gram(f) - g) ** 2).mean(dim=(1, 2)) for f, g in zip(feats, style_grams, strict=True))


class NeuralArtProblem(Problem):
    """Style transfer (Gatys et al.) with the image as optimizee: content photos (:data:`CONTENT_PHOTOS`), one
    painting."""

    lr_grid = NEURAL_ART_LR_GRID

    def __init__(
        self,
        size: int = 64,
        style: str = "starry_night",
        content_weight: float = 1.0,
        style_weight: float = 1e6,
        tv_weight: float = 0.2,
        features: str = "random",
        seed: int = 0,
    ) -> None:
        if not isinstance(size, int) or size < 16:
            raise ValueError(f"size={size!r} must be an integer >= 16 (the paper trains at 64, tests at 128)")
        weights = (("content_weight", content_weight), ("style_weight", style_weight), ("tv_weight", tv_weight))
        for name, value in weights:
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name}={value!r} must be a non-negative finite number")
        self.name, self.size, self.style = "neural_art", size, style
        self.dim = 3 * size * size
        # measured on a 2-core CPU: per image, 4 images at once at 128 x 128 were no slower than 16 (2026-12-02)
        self.rows_per_pass = max(1, 2**21 // (32 * size * size))  # about 2M floats of first-layer features
        self.content_weight, self.style_weight = float(content_weight), float(style_weight)
        self.tv_weight = float(tv_weight)
        self.features, self.features_note = make_features(features, seed)
        print(self.features_note)
        self.content_layer = 1
        self._photos: dict[str, torch.Tensor] = {}
        self.style_image()  # fail early on an unknown style

    def photo(self, name: str) -> torch.Tensor:
        """A content photo, loaded once."""
        if name not in self._photos:
            self._photos[name] = load_photo(name)
        return self._photos[name]

    def style_image(self) -> torch.Tensor:
        """The painting at this problem's size."""
        return load_style(self.style, self.size)

    def describe(self) -> str:
        kind = "VGG-19" if isinstance(self.features, VGGFeatures) else "random-feature"
        tv = f", total variation x {self.tv_weight:g}" if self.tv_weight else ""
        return (
            f"neural_art: {self.size}x{self.size} images styled after {self.style}, {kind} losses "
            f"(content x {self.content_weight:g}, style x {self.style_weight:g}{tv})"
        )

    def _make_tasks(self, seeds: list[int], device: torch.device, split: str) -> NeuralArtTasks:
        return NeuralArtTasks(self, seeds, split, device)
