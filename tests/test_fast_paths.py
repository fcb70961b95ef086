"""Fast paths as a switch beside plain code: ``L2L_PLAIN`` pins the plain PyTorch path, by name or all at once, and
the numbers stay the same to float rounding; an interactive kernel's process-wide settings change only when asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers import kernels, settings
from l2l_helpers.kernels import conv_block, selection, style_loss


@pytest.mark.parametrize(
    ("value", "pinned"),
    [
        ("", set()),
        ("0", set()),
        ("1", set(settings.FAST_PATHS)),
        ("all", set(settings.FAST_PATHS)),
        ("conv_block, style_loss", {"conv_block", "style_loss"}),
        ("native", {"native"}),
    ],
)
def test_plain_paths_reads_the_switch(monkeypatch, value, pinned):
    monkeypatch.setenv("L2L_PLAIN", value)
    assert settings.plain_paths() == pinned


def test_an_unknown_fast_path_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("L2L_PLAIN", "conv_blok")
    with pytest.raises(ValueError, match=r"unknown fast path.*conv_blok"):
        settings.plain_paths()
    with pytest.raises(ValueError, match="unknown fast path"):
        with kernels.plain_only("nope"):
            pass


def test_plain_only_pins_the_optimizees_kernels_inside_the_block_only():
    assert not kernels.plain_wanted("conv_block")
    with kernels.plain_only():
        assert kernels.plain_wanted("conv_block") and kernels.plain_wanted("style_loss")
        assert not kernels.plain_wanted("native")
        with kernels.plain_only("native"):
            assert kernels.plain_wanted("native")
        assert not kernels.plain_wanted("native")
    assert not kernels.plain_wanted("style_loss")


def test_the_lstm_step_follows_the_switch(monkeypatch):
    x, state = torch.randn(64, 2), torch.zeros(2, 2, 64, 20)
    monkeypatch.setattr(selection, "supports", lambda x, state: True)  # as on a CPU where native is selected
    monkeypatch.delenv("L2L_PLAIN", raising=False)
    assert kernels.backend_for(x, state) == "native"
    monkeypatch.setenv("L2L_PLAIN", "native")
    assert kernels.backend_for(x, state) == "fused"
    monkeypatch.setenv("L2L_PLAIN", "native,fused")
    assert kernels.backend_for(x, state) == "cells"
    monkeypatch.setenv("L2L_PLAIN", "1")
    assert kernels.backend_for(x, state) == "cells"


def test_the_optimizee_kernels_follow_the_switch(monkeypatch):
    y, gamma, beta = torch.randn(4, 3, 6, 6), torch.ones(3), torch.zeros(3)
    images = torch.rand(2, 3, 8, 8, requires_grad=True)
    monkeypatch.setenv("L2L_PLAIN", "conv_block,style_loss")
    assert not conv_block.supported(y, gamma, beta)
    assert not style_loss.supported(images)


def test_pinning_every_fast_path_changes_no_number_beyond_float_rounding(monkeypatch):
    """A learned optimizer's held-out losses on MNIST with every fast path and with every plain path."""
    net = l2l.load_pretrained("mnist")
    problem = l2l.MNISTProblem(batch_size=32)

    def losses() -> torch.Tensor:
        result = l2l.evaluate(l2l.LearnedRule(net), problem, n_tasks=2, steps=15, split="dev")
        return torch.as_tensor(result.losses)

    monkeypatch.delenv("L2L_PLAIN", raising=False)
    fast = losses()
    monkeypatch.setenv("L2L_PLAIN", "1")
    plain = losses()
    torch.testing.assert_close(plain, fast, rtol=1e-4, atol=1e-6)


_SETUP_PROBE = """
import json
import torch
import l2l_helpers as l2l
from l2l_helpers import runtime
before = torch.get_num_threads()
l2l.setup(verbose=False)
print(json.dumps({"kept": runtime._memory_kept, "threads_changed": torch.get_num_threads() != before}))
"""


def _setup_probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "L2L_KEEP_MEMORY"}
    out = subprocess.run(
        [sys.executable, "-c", _SETUP_PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_setup_leaves_the_allocator_and_threads_alone_unless_asked():
    """A notebook's ``setup()`` in an interactive kernel changes no process-wide setting; the headless runner asks
    (``L2L_KEEP_MEMORY=1``, set for its kernels)."""
    interactive = _setup_probe()
    assert interactive == {"kept": False, "threads_changed": False}
    assert _setup_probe(L2L_KEEP_MEMORY="1")["kept"] is True
