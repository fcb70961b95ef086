"""l2l_helpers.runtime: setup, seeding, devices, the notebooks' parameter checks; bad input named everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import same_weights, train

import l2l_helpers as l2l
from l2l_helpers import settings


def test_same_seed_same_results():
    """Two runs with the same seed give identical weights, histories and evaluations on CPU."""
    net_a, res_a = train(3)
    net_b, res_b = train(3)
    assert same_weights(res_a.last_state, res_b.last_state)
    assert same_weights(net_a.state_dict(), net_b.state_dict())
    assert res_a.history == res_b.history
    problem = l2l.QuadraticProblem()
    ev = [l2l.evaluate(l2l.LearnedRule(n), problem, 3, 10).losses for n in (net_a, net_b)]
    assert torch.equal(ev[0], ev[1])


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: l2l.MetaTrainConfig(epochs=0), "epochs"),
        (lambda: l2l.MetaTrainConfig(steps=-5), "steps"),
        (lambda: l2l.MetaTrainConfig(steps=10, unroll=20), "unroll"),
        (lambda: l2l.MetaTrainConfig(skip_grad_norm=0), "skip_grad_norm"),
        (lambda: l2l.make_problem("cifar"), "problem"),
        (lambda: l2l.MNISTProblem(activation="softplus"), "activation"),
        (lambda: l2l.CoordinatewiseLSTM(preprocessing="sqrt"), "preprocessing"),
        (lambda: l2l.resolve_device("tpu"), "device"),
        (lambda: l2l.evaluate(l2l.make_baseline("sgd", 0.1), l2l.QuadraticProblem(), n_tasks=0), "n_tasks"),
        (lambda: l2l.evaluate(l2l.make_baseline("sgd", 0.1), l2l.QuadraticProblem(), steps=0), "steps"),
        (lambda: l2l.check_parameters({"SMOKE": "yes"}), "SMOKE"),
        (lambda: l2l.check_parameters({"EPOCHS": 2.5}), "EPOCHS"),
        (lambda: l2l.check_parameters({"DEVICE": "gpu"}), "DEVICE"),
        (lambda: l2l.check_parameters({"SCALES": [1.0, -2.0]}), "SCALES"),
        (lambda: l2l.check_parameters({"LONG_HORIZONS": [1000, 0]}), "LONG_HORIZONS"),
        (lambda: l2l.check_parameters({"FIVE_LABELS": [3]}), "FIVE_LABELS"),
        (lambda: l2l.check_parameters({"TWO_LABELS": [0, "1"]}), "TWO_LABELS"),
        (lambda: l2l.check_parameters({"DATASET": "cifar100"}), "DATASET"),
        (lambda: l2l.check_parameters({"SPLIT": "val"}), "SPLIT"),
        (lambda: l2l.check_parameters({"LONG_HORIZONS": []}), "LONG_HORIZONS"),
        (lambda: l2l.check_parameters({"TIMING_REPEATS": 0}), "TIMING_REPEATS"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_parameter(make, name):
    """Every bad value raises ValueError whose message starts with or names the parameter."""
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu():
    """Asking for cuda without a GPU is a ValueError that says what to use instead."""
    with pytest.raises(ValueError, match="no CUDA GPU"):
        l2l.resolve_device("cuda")


def test_check_parameters_accepts_the_notebook_defaults():
    """The values in the committed parameters cells pass."""
    l2l.check_parameters({"SEED": 0, "DEVICE": "auto", "SMOKE": False, "INTERACTIVE": True, "EPOCHS": 300})
    l2l.check_parameters({"META_LR": 0.003, "P": 10.0, "SCALES": [0.01, 1], "HIDDEN_SIZE": 20, "TASK": 0})
    l2l.check_parameters({"LONG_HORIZONS": [1000, 2000], "TIMING_REPEATS": 30})
    l2l.check_parameters({"not_a_parameter": "anything", "In": [], "_": None})


def _subnormal_survives() -> bool:
    return float(torch.tensor([1e-39]) * 1.0) != 0.0  # 1e-39 is subnormal in float32


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush subnormals")
def test_denormals_are_flushed_inside_evaluation_and_meta_training_and_nest():
    """Subnormals are flushed inside optimize / meta_train (their slow path cost 2-3x), nested uses keep flushing,
    and IEEE arithmetic comes back afterwards."""
    from l2l_helpers.runtime import flushed_denormals

    assert _subnormal_survives()
    with flushed_denormals():
        with flushed_denormals():
            assert not _subnormal_survives()
        assert not _subnormal_survives()  # the inner exit does not end the outer one
    assert _subnormal_survives()
    seen = []
    tasks = l2l.QuadraticProblem().tasks("dev", range(2))
    sgd = l2l.make_baseline("sgd", 0.01)
    l2l.optimize(sgd, tasks, 3, on_step=lambda t, theta, g: seen.append(_subnormal_survives()))
    assert seen == [False] * 4 and _subnormal_survives()
    records = []
    config = l2l.MetaTrainConfig(epochs=1, steps=4, unroll=2, val_every=0)
    l2l.meta_train(l2l.CoordinatewiseLSTM(), l2l.QuadraticProblem(), config, progress=False,
                   callback=lambda record, result: records.append(_subnormal_survives()))  # fmt: skip
    assert records == [False] and _subnormal_survives()


_MEMORY_PROBE = """
import ctypes, hashlib, json, sys
import torch
from l2l_helpers import runtime

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
kept = runtime.keep_freed_memory()
before = libc.mallinfo2().hblkhd  # bytes in mmapped blocks (torch's import made some)
big = torch.ones(64 * 2**20)  # 256 MB: above glibc's largest mmap threshold
mapped = libc.mallinfo2().hblkhd - before
torch.manual_seed(0)
w = torch.randn(512, 512)
for _ in range(3):
    x = torch.randn(4096, 512) @ w
    w = w + x[:512].tanh() * 1e-3
digest = hashlib.sha256(w.numpy().tobytes()).hexdigest()
print(json.dumps({"kept": kept, "mapped_mb": mapped / 2**20, "digest": digest}))
"""


def _memory_probe(keep: str) -> dict:
    env = {**os.environ, "L2L_KEEP_MEMORY": keep}
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and mallinfo2")
def test_keep_freed_memory_stops_fresh_maps_and_changes_no_number():
    default, kept = _memory_probe("0"), _memory_probe("1")
    assert not default["kept"] and default["mapped_mb"] >= 256  # glibc maps a 256 MB tensor anew
    assert kept["kept"] and kept["mapped_mb"] < 1  # now it comes from the heap, which keeps it for reuse
    assert kept["digest"] == default["digest"]


def test_keep_memory_setting_rejects_unknown_values(monkeypatch):
    monkeypatch.setenv("L2L_KEEP_MEMORY", "maybe")
    with pytest.raises(ValueError, match="L2L_KEEP_MEMORY"):
        settings.keep_memory()
    monkeypatch.setenv("L2L_KEEP_MEMORY", "off")
    assert settings.keep_memory() is False
