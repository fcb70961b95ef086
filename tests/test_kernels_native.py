"""The native (C++) LSTM step (l2l_helpers.kernels.native) against the fused step: outputs, states, gradients."""

from __future__ import annotations

import os
import re

import pytest
import torch

from l2l_helpers import kernels
from l2l_helpers.kernels import native
from l2l_helpers.meta.meta_training import unroll
from l2l_helpers.optimizees import MNISTProblem, QuadraticProblem
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, OptimizerConfig

pytestmark = pytest.mark.skipif(native.load() is None, reason="the native LSTM step cannot be built here")


@pytest.fixture(params=["native", "haswell"])
def build(request, monkeypatch):
    """Each build target this CPU can run: this CPU's own (``-march=native``) and the 8-lane AVX2 build."""
    monkeypatch.setenv("L2L_NATIVE_MARCH", request.param)
    if native.missing_instructions(request.param):
        pytest.skip(f"this CPU cannot run the {request.param} build")
    if native.load() is None:
        pytest.skip(f"the {request.param} build cannot be made here")
    return request.param


@pytest.mark.slow  # 25-50 s: sent to a worker first in make test
def test_builds_have_the_lanes_of_their_vectors(build):
    """16 coordinates per block with 512-bit vectors, 8 with 256-bit ones (the AVX2 build on any x86 CPU)."""
    bits = native.vector_bits() if build == "native" else 256
    assert native.load().lanes == (16 if bits == 512 else 8)


def lively(config: OptimizerConfig, seed: int = 0) -> CoordinatewiseLSTM:
    """A random paper-sized net whose output layer is far from zero."""
    torch.manual_seed(seed)
    net = CoordinatewiseLSTM(config)
    with torch.no_grad():
        net.output.weight.normal_()
        net.output.bias.normal_()
    return net


def run_steps(net: CoordinatewiseLSTM, use_native: bool, monkeypatch: pytest.MonkeyPatch, n: int, steps: int = 4):
    """Several steps from a random state; the last update and state, the gradients of a loss of all of them."""
    monkeypatch.setenv("L2L_NATIVE", "1" if use_native else "0")
    gen = torch.Generator().manual_seed(1)
    state0 = torch.randn(net.config.num_layers, 2, n, net.config.hidden_size, generator=gen).requires_grad_(True)
    state, loss = state0, torch.zeros(())
    weights = torch.randn(n, generator=gen)
    for _ in range(steps):
        scale = 10.0 ** torch.randint(-7, 2, (n,), generator=gen).float()
        update, state = net(torch.randn(n, generator=gen) * scale, state)
        loss = loss + (update * weights).sum()
    loss = loss + (state**2).sum()  # the carried state gets a gradient too
    grads = torch.autograd.grad(loss, [state0, *net.parameters()])
    return update.detach(), state.detach(), grads


@pytest.mark.parametrize(
    ("layers", "preprocessing", "n"),
    [(2, "log_sign", 16 * 9), (2, "log_sign", 203), (1, "none", 37), (3, "log_sign", 5)],
    ids=["2-layers-full-blocks", "2-layers-ragged", "1-layer-1-input", "3-layers-under-one-block"],
)
def test_native_step_matches_python_step(layers, preprocessing, n, monkeypatch, build):
    """Updates, states and every gradient equal the Python fused step's to float32 rounding."""
    net = lively(OptimizerConfig(num_layers=layers, hidden_size=20, preprocessing=preprocessing, output_scale=0.3))
    fast = run_steps(net, True, monkeypatch, n)
    slow = run_steps(net, False, monkeypatch, n)
    torch.testing.assert_close(fast[0], slow[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast[1], slow[1], rtol=1e-5, atol=1e-6)
    for a, b in zip(fast[2], slow[2], strict=True):
        torch.testing.assert_close(a / b.abs().max(), b / b.abs().max(), rtol=1e-4, atol=2e-6)


def test_native_step_is_used_where_supported(monkeypatch):
    """Paper-sized float32 CPU nets take the native step; other sizes, float64 and L2L_NATIVE=0 do not."""
    monkeypatch.setenv("L2L_NATIVE", "1")
    net = CoordinatewiseLSTM(num_layers=2, hidden_size=20)
    grad, state = torch.randn(50), net.init_state(50)
    update, new_state = net(grad, state)
    assert type(new_state.grad_fn).__name__.startswith("NativeLSTMStep")
    with torch.no_grad():  # inference: the native forward, no graph
        update, new_state = net(grad, state)
    assert update.grad_fn is None and not new_state.requires_grad
    small = CoordinatewiseLSTM(num_layers=2, hidden_size=5)
    _, other = small(grad, small.init_state(50))
    assert type(other.grad_fn).__name__.startswith("FusedLSTMStep")
    _, other = net.double()(grad.double(), state.double())
    assert type(other.grad_fn).__name__.startswith("FusedLSTMStep")
    monkeypatch.setenv("L2L_NATIVE", "0")
    _, other = net.float()(grad, state)
    assert type(other.grad_fn).__name__.startswith("FusedLSTMStep")


def unroll_grads(net: CoordinatewiseLSTM, tasks, mode: str, monkeypatch: pytest.MonkeyPatch):
    """Meta-loss and first-order meta-gradient of a 5-step unroll with the native, Python fused or cells step."""
    theta = tasks.init_theta()
    with kernels.forced(mode):
        meta_loss, _, _, _ = unroll(net, tasks, theta, net.init_state(theta.numel()), 0, 5, [1.0] * 5)
    return meta_loss.detach(), torch.autograd.grad(meta_loss, list(net.parameters()))


def test_meta_training_unroll_matches_on_quadratics(monkeypatch, build):
    """A truncated unroll (meta-loss and meta-gradient) is the same with and without the native step."""
    net = lively(OptimizerConfig(output_scale=0.1), seed=3)
    tasks = QuadraticProblem().tasks("train", range(2))
    fast, slow = unroll_grads(net, tasks, "native", monkeypatch), unroll_grads(net, tasks, "fused", monkeypatch)
    torch.testing.assert_close(fast[0], slow[0], rtol=1e-5, atol=1e-6)
    for a, b in zip(fast[1], slow[1], strict=True):
        scale = b.abs().max().clamp_min(1e-12)
        torch.testing.assert_close(a / scale, b / scale, rtol=1e-4, atol=2e-6)


def test_meta_training_unroll_on_mnist_within_float32_noise(monkeypatch, build):
    """On MNIST an unroll amplifies float32 rounding (gradients over 10 orders of magnitude): the native
    meta-gradient must stay within 10x of the gap between the two accepted Python steps (fused and cells)."""
    net = lively(OptimizerConfig(output_scale=0.1), seed=3)
    tasks = MNISTProblem(hidden=(4,)).tasks("train", range(2))
    fast, fused, cells = (unroll_grads(net, tasks, mode, monkeypatch) for mode in ("native", "fused", "cells"))
    torch.testing.assert_close(fast[0], fused[0], rtol=1e-6, atol=1e-6)
    for a, b, c in zip(fast[1], fused[1], cells[1], strict=True):
        scale = b.abs().max()
        noise = ((c - b).abs().max() / scale).item()
        assert ((a - b).abs().max() / scale).item() <= 10 * noise + 1e-6


@pytest.mark.parametrize("n", [16 * 9, 203, 5], ids=["full-blocks", "ragged", "under-one-block"])
def test_in_place_step_writes_the_same_state_over_the_old_one(n, monkeypatch, build):
    """``in_place``: the same update and new state as a fresh one, bit for bit, written into the old state's memory;
    with a graph (meta-training) the old state is kept for the backward."""
    monkeypatch.setenv("L2L_NATIVE", "1")
    net = lively(OptimizerConfig(output_scale=0.3))
    gen = torch.Generator().manual_seed(2)
    grad = torch.randn(n, generator=gen) * 10.0 ** torch.randint(-7, 2, (n,), generator=gen).float()
    state = torch.randn(2, 2, n, 20, generator=gen)
    with torch.no_grad():
        update, fresh = net(grad, state)
        old = state.clone()
        again, written = net(grad, state, in_place=True)
    assert torch.equal(again, update) and torch.equal(written, fresh)
    assert written.data_ptr() == state.data_ptr() and torch.equal(state, fresh) and not torch.equal(state, old)
    update, new_state = net(grad, old, in_place=True)  # phi needs a gradient: recorded, nothing overwritten
    assert new_state.data_ptr() != old.data_ptr() and new_state.grad_fn is not None
    with pytest.raises(RuntimeError, match="save and in_place exclude each other"):
        wt = [torch.zeros(23, 80), torch.zeros(41, 80)]
        native.load().forward(torch.zeros(n, 2), old, wt, torch.zeros(20), 0.0, 1.0, True, True)


def test_bad_shapes_are_refused_by_the_module():
    """The C++ code checks what it is given instead of reading past the end of a tensor."""
    module = native.load()
    x, state = torch.randn(8, 2), torch.zeros(2, 2, 8, 20)
    wt = [torch.zeros(23, 80), torch.zeros(41, 80)]
    with pytest.raises(RuntimeError, match="wt\\[1\\] must have shape"):
        module.forward(x, state, [wt[0], wt[0]], torch.zeros(20), 0.0, 1.0, False, False)
    with pytest.raises(RuntimeError, match="state must have shape"):
        module.forward(x, torch.zeros(2, 2, 9, 20), wt, torch.zeros(20), 0.0, 1.0, False, False)
    with pytest.raises(RuntimeError, match="20 hidden units"):
        module.forward(x, torch.zeros(2, 2, 8, 5), wt, torch.zeros(5), 0.0, 1.0, False, False)


def test_unbuildable_module_falls_back_with_one_warning(monkeypatch):
    """Without a compiler the Python step runs, after a warning that says what to install."""
    monkeypatch.setattr(native, "_modules", {})
    monkeypatch.setattr(kernels.selection, "_selections", {})
    monkeypatch.setattr(native, "SOURCE", native.SOURCE.with_name("missing.cpp"))
    with pytest.warns(RuntimeWarning, match="could not be built"):
        assert native.load() is None
    for mode in ("1", "auto"):  # forced or not, the fused step runs, and says why
        monkeypatch.setenv("L2L_NATIVE", mode)
        net = CoordinatewiseLSTM(num_layers=2, hidden_size=20)
        _, state = net(torch.randn(10), net.init_state(10))
        assert type(state.grad_fn).__name__.startswith("FusedLSTMStep")
        assert kernels.selection.selection().step == "fused" and "unavailable" in kernels.selection.selection().reason


def test_weights_are_rebuilt_whenever_phi_changes(monkeypatch):
    """The per-step weight matrices are cached, but an in-place update, new storage or another net is seen."""
    monkeypatch.setenv("L2L_NATIVE", "1")
    net = lively(OptimizerConfig(output_scale=0.5))
    grad, state = torch.randn(40), net.init_state(40)

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            fast, _ = net(grad, state)
            monkeypatch.setenv("L2L_NATIVE", "0")
            slow, _ = net(grad, state)
            monkeypatch.setenv("L2L_NATIVE", "1")
        return fast, slow

    before, _ = both()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    update, _ = net(grad, state)
    update.sum().backward()
    opt.step()  # in place
    fast, slow = both()
    assert not torch.allclose(fast, before)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    net.cells[0].weight_hh.data = net.cells[0].weight_hh.data * 2  # new storage, same Parameter
    fast, slow = both()
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    net.load_state_dict(lively(OptimizerConfig(output_scale=0.5), seed=7).state_dict())
    fast, slow = both()
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_ninja_from_the_package_is_found_without_an_activated_environment(monkeypatch):
    """torch looks for ninja on PATH; a virtual environment used without activation still builds."""
    ninja = pytest.importorskip("ninja")
    monkeypatch.setenv("PATH", "/nonexistent")
    native._put_ninja_on_path()
    assert native.shutil.which("ninja") is not None
    assert os.environ["PATH"].split(os.pathsep)[0] == str(ninja.BIN_DIR)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads the process's memory map (Linux)")
def test_the_step_runs_on_torchs_own_openmp_threads(build):
    """The extension resolves OpenMP to the runtime torch already loaded: one thread pool, not two fighting."""
    native.load()
    with open("/proc/self/maps", encoding="utf-8") as maps:
        runtimes = {line.split()[-1] for line in maps if re.search(r"/lib(g|i)?omp[^/]*\.so", line)}
    assert len(runtimes) == 1, runtimes
