"""Notebook 07's written-out updates for networks of any shape against the package's optimizer.

The notebook's cell marked ``# coordinatewise_updates`` flattens the gradients of a list of parameter tensors into one
batch of coordinates, runs the coordinatewise LSTM on it row by row and reshapes the updates back: why one optimizer
serves a wider or deeper network unchanged (paper, Section 3.2, Figure 5). These tests run its function on MLPs of
several widths and depths against ``l2l.LearnedOptimizer`` and ``l2l.CoordinatewiseLSTM`` (state carried over
steps), check that a coordinate's update does not depend on how the coordinates are grouped, ordered or which network
surrounds them, and run the notebook's check cell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat
import pytest
import torch
from helpers import cell_functions
from helpers import teaching_cell as notebook_cell

import l2l_helpers as l2l

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "07_architectures.ipynb"
MARKER = "# coordinatewise_updates"
Updates = Callable[[l2l.CoordinatewiseLSTM, Sequence[torch.Tensor], torch.Tensor], tuple[list, torch.Tensor]]


def notebook_code_cells() -> list[str]:
    return [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]


def teaching_cell() -> str:
    """The source of the notebook's cell that writes the updates out."""
    return notebook_cell(NOTEBOOK, MARKER)


def coordinatewise_updates() -> Updates:
    """The function the cell defines, and nothing else of the cell."""
    namespace = {"torch": torch, "l2l": l2l}
    return cell_functions(NOTEBOOK, MARKER, namespace, ["coordinatewise_updates"])["coordinatewise_updates"]


def shipped() -> l2l.CoordinatewiseLSTM:
    """The shipped MNIST optimizer (trained on 784-20-10): the one notebook 07 runs on wider and deeper networks."""
    return l2l.load_pretrained("mnist")


def lively_double_net(num_layers: int, seed: int = 0) -> l2l.CoordinatewiseLSTM:
    """A float64 random optimizer with a non-trivial output layer: differences are not hidden by small updates."""
    gen = torch.Generator().manual_seed(seed)
    net = l2l.CoordinatewiseLSTM(num_layers=num_layers, hidden_size=6).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
    return net


def mlp(hidden: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.nn.Sequential:
    """The MNIST MLP's ``nn.Sequential`` twin of the given hidden layers, with a local seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return l2l.mlp_model(hidden).to(dtype)


def gradients(model: torch.nn.Module, seed: int) -> list[torch.Tensor]:
    """The gradients of the cross-entropy on a random batch of 784-pixel images (drawn from ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    images, labels = torch.rand(16, 784, generator=gen, dtype=dtype), torch.randint(0, 10, (16,), generator=gen)
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    return list(torch.autograd.grad(loss, list(model.parameters())))


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


SHAPES = [(20,), (5,), (40,), (20, 20), (7, 13, 3)]
#: float32 against the package's native or fused step: the kernels' own agreement with nn.LSTMCell (test_kernels_*)
FLOAT32 = {"rtol": 1e-5, "atol": 1e-6}


@pytest.mark.parametrize("hidden", SHAPES, ids=lambda h: "784-" + "-".join(map(str, h)) + "-10")
def test_written_out_updates_are_the_learned_optimizers(hidden):
    """The shipped optimizer on MLPs of other widths and depths, 3 steps with the state carried: the cell's updates
    and state are ``l2l.LearnedOptimizer``'s, tensor by tensor."""
    updates, net = coordinatewise_updates(), shipped()
    model = mlp(hidden, seed=1)
    params = list(model.parameters())
    opt = l2l.LearnedOptimizer(params, net)
    state = net.init_state(sum(p.numel() for p in params))
    for step in range(3):
        grads = gradients(model, seed=step)
        with torch.no_grad():
            mine, state = updates(net, grads, state)
            assert [u.shape for u in mine] == [p.shape for p in params]
            before = [p.clone() for p in params]
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            opt.step()
        theirs = [p.detach() - b for p, b in zip(params, before, strict=True)]
        assert flat(theirs).abs().max() > 1e-5  # the optimizer moves the network
        torch.testing.assert_close(mine, theirs, **FLOAT32)
        torch.testing.assert_close(state, torch.cat([opt.state[p]["lstm"] for p in params], dim=2), rtol=0, atol=1e-5)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("hidden", [(3,), (11, 4)], ids=["784-3-10", "784-11-4-10"])
def test_written_out_updates_are_the_networks_call(num_layers, hidden):
    """In float64 and mid-trajectory (a random state): the cell's updates are ``net(flat gradient, state)``'s, any
    depth of the optimizer, and its state too."""
    updates, net = coordinatewise_updates(), lively_double_net(num_layers)
    grads = gradients(mlp(hidden, seed=2, dtype=torch.float64), seed=3)
    n = sum(g.numel() for g in grads)
    state = torch.randn(net.init_state(n).shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        mine, my_state = updates(net, grads, state)
        theirs, their_state = net(flat(grads), state)
    assert theirs.abs().max() > 1e-2
    torch.testing.assert_close(flat(mine), theirs, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(my_state, their_state, rtol=1e-12, atol=1e-14)


def ordered_cases(seed: int = 5) -> tuple[l2l.CoordinatewiseLSTM, list[torch.Tensor], torch.Tensor]:
    """A float64 optimizer, one network's gradients (784-7-10) and a random state of its coordinates."""
    net = lively_double_net(2, seed)
    grads = gradients(mlp((7,), seed=seed, dtype=torch.float64), seed=seed)
    n = sum(g.numel() for g in grads)
    state = torch.randn(net.init_state(n).shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return net, grads, state


def test_the_update_does_not_depend_on_how_coordinates_are_grouped_into_tensors():
    """The same coordinates as the MLP's four tensors, as one vector, or as other shapes: the same flat updates."""
    updates = coordinatewise_updates()
    net, grads, state = ordered_cases()
    g = flat(grads)
    n = g.numel()
    with torch.no_grad():
        as_mlp, state_mlp = updates(net, grads, state)
        as_vector, state_vector = updates(net, [g], state)
        regrouped, state_regrouped = updates(net, [g[:10].view(2, 5), g[10 : n - 3].view(1, -1), g[n - 3 :]], state)
    assert [u.shape for u in regrouped] == [(2, 5), (1, n - 13), (3,)]
    assert torch.equal(flat(as_mlp), as_vector[0]) and torch.equal(flat(regrouped), as_vector[0])
    assert torch.equal(state_mlp, state_vector) and torch.equal(state_regrouped, state_vector)


def test_permuting_coordinates_permutes_their_updates():
    """Coordinates (gradient and memory) in another order: the same updates in that order."""
    updates = coordinatewise_updates()
    net, grads, state = ordered_cases()
    g = flat(grads)
    perm = torch.randperm(g.numel(), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        (update,), new_state = updates(net, [g], state)
        (update_p,), new_state_p = updates(net, [g[perm]], state[:, :, perm])
    torch.testing.assert_close(update_p, update[perm], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(new_state_p, new_state[:, :, perm], rtol=1e-12, atol=1e-14)


def test_a_coordinates_update_does_not_depend_on_the_network_around_it():
    """A narrow and a wide network stepped together, or each alone, or one layer alone: the same updates."""
    updates, net = coordinatewise_updates(), lively_double_net(2, seed=7)
    narrow = gradients(mlp((20,), seed=8, dtype=torch.float64), seed=8)
    wide = gradients(mlp((40, 20), seed=9, dtype=torch.float64), seed=9)
    gen = torch.Generator().manual_seed(10)
    n_narrow, n_wide = sum(g.numel() for g in narrow), sum(g.numel() for g in wide)
    state = torch.randn(net.init_state(n_narrow + n_wide).shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        together, _ = updates(net, narrow + wide, state)
        alone_narrow, _ = updates(net, narrow, state[:, :, :n_narrow])
        alone_wide, _ = updates(net, wide, state[:, :, n_narrow:])
        first_layer, _ = updates(net, wide[:1], state[:, :, n_narrow : n_narrow + wide[0].numel()])
    torch.testing.assert_close(together, alone_narrow + alone_wide, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(first_layer[0], alone_wide[0], rtol=1e-12, atol=1e-14)


def test_a_mixed_up_reshape_is_caught():
    """The checks can fail: updates reshaped back in the wrong order (a transposed weight) differ from the package's."""
    updates, net = coordinatewise_updates(), shipped()
    model = mlp((5,), seed=11)
    params = list(model.parameters())
    grads = gradients(model, seed=11)
    with torch.no_grad():
        mine, _ = updates(net, grads, net.init_state(sum(g.numel() for g in grads)))
        theirs, _ = net(flat(grads), net.init_state(sum(g.numel() for g in grads)))
    wrong = mine[0].reshape(-1, mine[0].shape[0]).T.reshape(params[0].shape)  # coordinates of the first weight mixed
    torch.testing.assert_close(flat(mine), theirs, **FLOAT32)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(flat([wrong, *mine[1:]]), theirs, **FLOAT32)


def test_the_notebook_check_runs_without_touching_the_global_random_state():
    """The notebook's check cell as it runs (on a small stand-in for MNIST): it agrees with the package, and the
    experiment's random draws after it are the ones they would have been."""
    check = [s for s in notebook_code_cells() if "coordinatewise_updates(net, grads" in s and not s.startswith(MARKER)]
    assert len(check) == 1
    gen = torch.Generator().manual_seed(12)
    images, labels = torch.rand(128, 784, generator=gen), torch.randint(0, 10, (128,), generator=gen)
    data = l2l.MNISTData(images, labels, images, labels, "offline-sample")
    namespace = {"torch": torch, "l2l": l2l, "net": shipped(), "device": torch.device("cpu"), "SEED": 0}
    namespace |= {"trained_on": l2l.MNISTProblem(data=data), "WIDE_UNITS": 40, "DEEP_LAYERS": 2}
    exec(compile(teaching_cell(), str(NOTEBOOK), "exec"), namespace)
    torch.manual_seed(13)
    rng_before = torch.get_rng_state()
    exec(compile(check[0], str(NOTEBOOK), "exec"), namespace)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert namespace["gap"] < 1e-5
    assert flat(namespace["ours"]).abs().max() > 1e-4
