"""Trained optimizer networks shipped with the project (produced by ``l2l train``; notebooks 05-09)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .checkpoints import load_optimizer, read_checkpoint
from .coordinatewise_lstm import CoordinatewiseLSTM

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained_weights"


def available_pretrained() -> list[str]:
    """Names accepted by :func:`load_pretrained`."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))


def pretrained_path(name: str) -> Path:
    """File of the shipped optimizer ``name``; ``ValueError`` listing the names if unknown."""
    path = PRETRAINED_DIR / f"{name}.pt"
    if not name or "/" in name or not path.is_file():
        names = ", ".join(available_pretrained()) or "none shipped yet"
        raise ValueError(f"no pretrained optimizer named {name!r}; available: {names}")
    return path


def load_pretrained(name: str, device: torch.device | str = "cpu") -> CoordinatewiseLSTM:
    """A shipped trained optimizer network, rebuilt from the architecture stored with its weights."""
    net, _ = load_optimizer(pretrained_path(name), device)
    return net


def pretrained_info(name: str) -> dict[str, Any]:
    """How a shipped optimizer was made: the training command, seed, recipe and its metrics.

    ``info["evaluation"]``, when shipped (``<name>.eval.json``, written by ``l2l evaluate --out``), holds
    its held-out results against tuned baselines and the command that measured them.
    """
    info = dict(read_checkpoint(pretrained_path(name))["metadata"])
    evaluation = PRETRAINED_DIR / f"{name}.eval.json"
    if evaluation.is_file():
        info["evaluation"] = json.loads(evaluation.read_text())
    return info
