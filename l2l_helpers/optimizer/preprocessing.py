"""Gradient preprocessing for the optimizer network (paper, Appendix A; notebook 03).

Gradients of different parameters can differ by many orders of magnitude, while a neural network
works best on inputs of order one. The paper therefore feeds each gradient coordinate to the LSTM
as two numbers: a log-magnitude channel and a sign channel.
"""

from __future__ import annotations

import math

import torch

#: Preprocessing kinds and the number of LSTM inputs each one produces per coordinate.
PREPROCESSING_INPUTS: dict[str, int] = {
    "log_sign": 2,  # the paper's Appendix A formula
    "log_sign_smooth": 2,  # the smooth variant in the authors' TensorFlow code
    "none": 1,  # the raw gradient
    "rescale": 1,  # the raw gradient divided by the constant p: the paper's simpler alternative (Appendix A)
}

#: The paper's preprocessing constant p (Appendix A).
PAPER_P = 10.0


def check_preprocessing(kind: str, p: float) -> None:
    """Raise ``ValueError`` naming the parameter if ``kind`` or ``p`` is not usable."""
    if kind not in PREPROCESSING_INPUTS:
        known = ", ".join(sorted(PREPROCESSING_INPUTS))
        raise ValueError(f"preprocessing={kind!r} is unknown; use one of: {known}")
    if not (isinstance(p, (int, float)) and math.isfinite(p) and p > 0):
        raise ValueError(f"p={p!r} must be a positive finite number (the paper uses p = 10)")


def log_sign(grad: torch.Tensor, p: float = PAPER_P) -> torch.Tensor:
    """The paper's preprocessing (Appendix A), applied coordinatewise.

    Each coordinate g becomes ``(log|g| / p, sign g)`` if ``|g| >= e^-p`` and ``(-1, e^p g)``
    otherwise. Returns a tensor of shape ``grad.shape + (2,)``.
    """
    magnitude = grad.abs()
    large = magnitude >= math.exp(-p)
    tiny = torch.finfo(grad.dtype).tiny
    log_channel = torch.where(large, torch.log(magnitude.clamp_min(tiny)) / p, -torch.ones_like(grad))
    sign_channel = torch.where(large, torch.sign(grad), grad * math.exp(p))
    return torch.stack([log_channel, sign_channel], dim=-1)


def log_sign_smooth(grad: torch.Tensor, p: float = 5.0) -> torch.Tensor:
    """The authors' code's smooth variant: ``clamp(log(|g| + eps) / p, min=-1)``, ``clamp(e^p g, -1, 1)``.

    Continuous in g, unlike the paper's piecewise formula; the authors use p = 5 for MNIST.
    Returns a tensor of shape ``grad.shape + (2,)``.
    """
    eps = torch.finfo(grad.dtype).eps
    log_channel = (torch.log(grad.abs() + eps) / p).clamp_min(-1.0)
    sign_channel = (grad * math.exp(p)).clamp(-1.0, 1.0)
    return torch.stack([log_channel, sign_channel], dim=-1)


def preprocess(grad: torch.Tensor, kind: str = "log_sign", p: float = PAPER_P) -> torch.Tensor:
    """Turn gradients into LSTM inputs of shape ``grad.shape + (PREPROCESSING_INPUTS[kind],)``.

    ``rescale`` is the alternative the paper mentions before its log/sign formula (Appendix A): divide every
    gradient by one constant shared by all coordinates (here ``p``) so that typical inputs are of order one.
    It fixes one scale; unlike ``log_sign`` it cannot follow the gradients when their scale changes.
    """
    check_preprocessing(kind, p)
    if kind == "log_sign":
        return log_sign(grad, p)
    if kind == "log_sign_smooth":
        return log_sign_smooth(grad, p)
    if kind == "rescale":
        return (grad / p).unsqueeze(-1)
    return grad.unsqueeze(-1)
