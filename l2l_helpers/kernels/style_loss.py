"""Neural art's loss with its image gradient written by hand (paper, Section 3.4; the optimizee is
:mod:`l2l_helpers.optimizees.neural_art`).

The loss of an image I is ``a * content + b * style + c * TV``: the content term compares one layer's feature maps
F_l with the photo's, the style term compares every layer's Gram matrix G_i = X_i^T X_i / n_i (X_i: F_i as
(HW, C), n_i = C H W) with the painting's S_i, and TV penalises neighbouring pixels' differences. Autograd
differentiates it as dozens of separate passes at the size of the feature maps: one gradient per use of each map,
added together later, each divided and masked on its own. Here the backward builds each map's gradient in one
buffer, from the top layer down:

    dF_i = pool_backward(dP_i)  [+ content: 2 a (F_l - T) / n_l]  + X_i M_i,   M_i = 2 b (R_i + R_i^T) / (C_i^2 n_i)

with R_i = G_i - S_i (one product that adds into the buffer in place), then the ReLU's mask and the convolution's
input gradient, and finally TV's gradient added into the image's. The forward is :class:`RandomFeatures`' and the
package's own loss, operation for operation, so the loss is the same bit for bit and the gradient the same to
float rounding (``tests/test_kernels_style_loss.py``). The package's autograd loss is what runs for VGG-19
features, without a gradient, and for graphs differentiated twice (:func:`~l2l_helpers.kernels.plain.plain_only`).
Measured on 2 CPU cores (``benchmarks/bench_neural_art.py``, ``benchmarks/README.md``): 1.1-1.3x per image-step
against autograd over the same loss, 1.4-1.5x at 128 x 128 together with the memory :func:`l2l_helpers.setup` keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from l2l_helpers.kernels.plain import plain_wanted, register


def _rows(feat: torch.Tensor) -> torch.Tensor:
    """Channels-last maps (B, C, H, W) as X (B, HW, C), a view."""
    b, c, h, w = feat.shape
    return feat.permute(0, 2, 3, 1).reshape(b, h * w, c)


def _tv_terms(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbouring pixels' differences along the width and along the height."""
    return images[..., :, 1:] - images[..., :, :-1], images[..., 1:, :] - images[..., :-1, :]


class StyleContentLoss(torch.autograd.Function):
    """``a * content + b * style + c * TV`` per image (B,) of ``images`` (B, 3, H, W), with the hand-written backward
    described above. ``features`` is a :class:`~l2l_helpers.optimizees.neural_art.RandomFeatures` (its ``weights``:
    3x3 convolutions, padding 1, ReLU, 2x2 average pooling between them, channels-last maps); ``coefficients`` are
    (a, b, c). Call it as :data:`style_content_loss`."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        images: torch.Tensor,
        features: torch.nn.Module,
        content_target: torch.Tensor,
        style_grams: Sequence[torch.Tensor],
        content_layer: int,
        coefficients: tuple[float, float, float],
    ) -> torch.Tensor:
        a, b, c = coefficients
        feats = features(images)
        residuals, style = [], 0
        for f, s in zip(feats, style_grams, strict=True):
            x = _rows(f)
            r = x.transpose(1, 2) @ x / f[0].numel() - s
            residuals.append(r)
            style = style + (r**2).mean(dim=(1, 2))
        diff = feats[content_layer] - content_target
        total = a * (diff**2).mean(dim=(1, 2, 3)) + b * style
        if c:
            dx, dy = _tv_terms(images)
            total = total + c * ((dx**2).mean(dim=(1, 2, 3)) + (dy**2).mean(dim=(1, 2, 3)))
        ctx.save_for_backward(images, diff, *feats, *residuals)
        ctx.weights, ctx.content_layer, ctx.coefficients, ctx.layers = (
            list(features.weights),
            content_layer,
            coefficients,
            len(feats),
        )
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        if torch.is_grad_enabled():  # create_graph=True: the caller wants to differentiate this gradient again
            raise RuntimeError(
                "neural art's hand-written image gradient cannot be differentiated again: compute the loss inside "
                "l2l_helpers.kernels.plain.plain_only() (second-order meta-training does) to get autograd's"
            )
        return StyleContentLoss._backward(ctx, grad)

    @staticmethod
    @once_differentiable
    def _backward(ctx: Any, grad: torch.Tensor) -> Any:
        images, diff, *rest = ctx.saved_tensors
        feats, residuals = rest[: ctx.layers], rest[ctx.layers :]
        a, b, c = ctx.coefficients
        per_image = grad.view(-1, 1, 1)  # (B, 1, 1): d total / d loss of each image
        d_feat: torch.Tensor | None = None  # the gradient arriving at F_i from the layer above (through pooling)
        for i in reversed(range(ctx.layers)):
            f, r = feats[i], residuals[i]
            channels, n = f.shape[1], f[0].numel()
            m = (r + r.transpose(1, 2)) * (per_image * (2 * b / (channels * channels * n)))  # (B, C, C)
            if i == ctx.content_layer:
                content = diff * (per_image.unsqueeze(1) * (2 * a / diff[0].numel()))
                d_feat = content if d_feat is None else d_feat.add_(content)
            if d_feat is None:
                rows = torch.bmm(_rows(f), m)  # (B, HW, C): dF_i in the channels-last layout
            else:
                rows = _rows(d_feat.contiguous(memory_format=torch.channels_last)).baddbmm_(_rows(f), m)
            d_f = rows.view(f.shape[0], f.shape[2], f.shape[3], channels).permute(0, 3, 1, 2)
            d_pre = torch.ops.aten.threshold_backward(d_f, f, 0)  # the ReLU: zero where F_i is zero
            below = feats[i - 1] if i else images
            shape = (below.shape[0], below.shape[1], f.shape[2], f.shape[3])
            d_in = torch.ops.aten.convolution_backward(
                d_pre,
                torch.empty(
                    shape, dtype=d_pre.dtype, device=d_pre.device, memory_format=torch.channels_last
                ),  # only its shape and layout are read
                ctx.weights[i],
                None,
                [1, 1],
                [1, 1],
                [1, 1],
                False,
                [0, 0],
                1,
                [True, False, False],
            )[0]
            if i:
                d_feat = torch.ops.aten.avg_pool2d_backward(d_in, below, [2, 2], [2, 2], [0, 0], False, True, None)
        d_images = d_in.contiguous()
        if c:
            dx, dy = _tv_terms(images)
            scale = per_image.unsqueeze(1) * (2 * c)
            dx.mul_(scale / dx[0].numel())
            dy.mul_(scale / dy[0].numel())
            d_images[..., :, 1:] += dx
            d_images[..., :, :-1] -= dx
            d_images[..., 1:, :] += dy
            d_images[..., :-1, :] -= dy
        return d_images, None, None, None, None, None


def supported(images: torch.Tensor, features: torch.nn.Module | None = None, *args: Any) -> bool:
    """Whether :class:`StyleContentLoss` runs: its gradient is wanted, once (not inside
    :func:`~l2l_helpers.kernels.plain.plain_only`), and ``features`` are a network whose forward it repeats operation
    for operation, which says so by ``style_loss_kernel = True`` (:class:`RandomFeatures` does; VGG-19 does not)."""
    repeated = features is None or getattr(features, "style_loss_kernel", False) is True
    return images.requires_grad and torch.is_grad_enabled() and not plain_wanted("style_loss") and repeated


#: ``style_content_loss(images, features, content_target, style_grams, content_layer, coefficients)``: see
#: :class:`StyleContentLoss`; swapped in for :func:`l2l_helpers.optimizees.neural_art.style_content_loss`.
style_content_loss = StyleContentLoss.apply
register("style_loss", style_content_loss, supported)
