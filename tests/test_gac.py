"""Global Averaging Cells (paper, Appendix; notebook 11): oracles against the plain coordinatewise LSTM."""

from __future__ import annotations

import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers import CoordinatewiseLSTM, OptimizerConfig, read_checkpoint, save_checkpoint
from l2l_helpers.cli.main import main
from l2l_helpers.optimizer.coordinatewise_lstm import global_average


def _pair(gac: int, seed: int = 0) -> tuple[CoordinatewiseLSTM, CoordinatewiseLSTM]:
    """A GAC network and a plain one with the same weights phi (GAC adds no parameters)."""
    torch.manual_seed(seed)
    gac_net = CoordinatewiseLSTM(gac_cells=gac)
    plain = CoordinatewiseLSTM()
    plain.load_state_dict(gac_net.state_dict())
    return gac_net, plain


def _run(net: CoordinatewiseLSTM, grads: list[torch.Tensor]) -> list[torch.Tensor]:
    state, updates = net.init_state(grads[0].numel()), []
    for g in grads:
        update, state = net(g, state)
        updates.append(update)
    return updates


def test_no_averaged_cells_is_the_plain_lstm():
    """gac_cells=0 is the coordinatewise LSTM of Section 2.1, and its checkpoint format is unchanged."""
    assert OptimizerConfig(gac_cells=0) == OptimizerConfig()
    assert "gac_cells" not in OptimizerConfig().to_dict()
    assert OptimizerConfig.from_dict(OptimizerConfig(gac_cells=5).to_dict()).gac_cells == 5


def test_one_coordinate_per_optimizee_is_the_plain_lstm():
    """The average over one coordinate is that coordinate: each row of (tasks, 1) is its own optimizee."""
    gac_net, plain = _pair(gac=7)
    grads = [torch.randn(5, 1) for _ in range(4)]  # 5 tasks of 1 coordinate each
    with l2l.kernels.forced("cells"):
        expected = _run(plain, grads)
    for got, want in zip(_run(gac_net, grads), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_identical_coordinates_are_the_plain_lstm():
    """When every coordinate sees the same gradients, their average is each one's value."""
    gac_net, plain = _pair(gac=20)
    grads = [torch.randn(()).expand(13).clone() * 0.1 for _ in range(4)]
    with l2l.kernels.forced("cells"):
        expected = _run(plain, grads)
    for got, want in zip(_run(gac_net, grads), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_averaging_mixes_coordinates_of_one_task_never_of_two():
    """GAC makes a coordinate's update depend on the other coordinates of its task, and only of its task."""
    gac_net, plain = _pair(gac=4, seed=1)
    a, b = torch.randn(2, 9), torch.randn(2, 9)
    b[0] = a[0]  # task 0 the same, task 1 different
    b[1, 3:] = a[1, 3:]  # task 1: coordinates 3-8 keep their gradients, 0-2 get new ones
    (ua,), (ub,) = _run(gac_net, [a]), _run(gac_net, [b])
    torch.testing.assert_close(ua[0], ub[0])  # the other task's gradients do not reach task 0
    assert not torch.allclose(ua[1, 3:], ub[1, 3:])  # same own gradients, other neighbours: another update
    (pa,), (pb,) = _run(plain, [a]), _run(plain, [b])
    torch.testing.assert_close(pa[1, 3:], pb[1, 3:])  # the plain LSTM sees only its own coordinate


def test_global_average_by_hand():
    h = torch.arange(12.0).view(4, 3)  # 2 optimizees of 2 coordinates, 3 units
    out = global_average(h, cells=2, optimizees=2)
    expected = torch.tensor([[1.5, 2.5, 2.0], [1.5, 2.5, 5.0], [7.5, 8.5, 8.0], [7.5, 8.5, 11.0]])
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="do not split"):
        global_average(h, cells=1, optimizees=3)


def test_permuting_coordinates_permutes_updates():
    """The average does not depend on the order of the coordinates: the LSTM+GAC is permutation-equivariant."""
    gac_net, _ = _pair(gac=5, seed=2)
    g, perm = torch.randn(11), torch.randperm(11)
    (u,), (up,) = _run(gac_net, [g]), _run(gac_net, [g[perm]])
    torch.testing.assert_close(up, u[perm])


def test_meta_gradient_flows_through_the_averaged_cells():
    gac_net, _ = _pair(gac=3)
    update, _ = gac_net(torch.randn(2, 6), gac_net.init_state(12))
    update.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gac_net.parameters())


@pytest.mark.parametrize("bad", [-1, 21, 2.5, True])
def test_bad_gac_cells_are_refused(bad):
    with pytest.raises(ValueError, match="gac_cells"):
        OptimizerConfig(gac_cells=bad)


def test_cli_trains_and_stores_gac(tmp_path, capsys):
    out = tmp_path / "gac.pt"
    tiny = ["--steps", "10", "--unroll", "5", "--tasks-per-epoch", "2", "--val-every", "1", "--val-tasks", "2"]
    assert main(["train", "--problem", "quadratic", "--epochs", "1", *tiny, "--gac-cells", "4", "--out", str(out)]) == 0
    assert read_checkpoint(out)["config"]["gac_cells"] == 4
    net, _ = l2l.load_optimizer(out)
    assert net.config.gac_cells == 4
    path = save_checkpoint(tmp_path / "plain.pt", CoordinatewiseLSTM())
    assert "gac_cells" not in read_checkpoint(path)["config"]
    capsys.readouterr()
    assert main(["train", "--problem", "quadratic", "--gac-cells", "21", "--epochs", "1"]) == 2
    assert "gac_cells=21" in capsys.readouterr().err
