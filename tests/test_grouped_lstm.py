"""One LSTM per parameter group (Section 3.3): routing, states, checkpoints, meta-training and the torch.optim face."""

from __future__ import annotations

import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.meta.checkpoints import load_state_into, read_checkpoint
from l2l_helpers.optimizees.conv import ConvProblem
from l2l_helpers.optimizer.grouped_lstm import GroupedConfig, GroupedLSTM, build_optimizer, route_for
from tests.test_optimizees_conv import synthetic


def _grouped(seed: int = 0, names: tuple[str, ...] = ("conv", "fc")) -> GroupedLSTM:
    torch.manual_seed(seed)
    net = GroupedLSTM(GroupedConfig.same(l2l.OptimizerConfig(), names))
    with torch.no_grad():  # the networks propose clearly different steps
        net.nets[names[0]].output.weight.mul_(10)
    return net


def _interleaved(dim: int = 7) -> dict[str, torch.Tensor]:
    return {"conv": torch.tensor([0, 2, 3, 6]), "fc": torch.tensor([1, 4, 5])}


@pytest.mark.parametrize("routing", ["contiguous", "interleaved"])
def test_each_coordinate_goes_through_its_groups_lstm_with_its_own_state(routing):
    """Oracle: each group's network run alone on its own coordinates (gathered by hand), state carried per group."""
    net = _grouped()
    groups = _interleaved() if routing == "interleaved" else {"conv": torch.arange(4), "fc": torch.arange(4, 7)}
    net.route(groups)
    rows, dim = 3, 7
    state = net.init_state(rows * dim)
    own = {name: net.nets[name].init_state(rows * len(idx)) for name, idx in groups.items()}
    for step in range(4):
        grad = torch.randn(rows, dim, generator=torch.Generator().manual_seed(step))
        update, state = net(grad, state)
        for name, idx in groups.items():
            expected, own[name] = net.nets[name](grad[:, idx], own[name])
            torch.testing.assert_close(update[:, idx], expected)
            layers, hidden = net.config.state_layers, net.config.hidden_size
            mine = state.view(layers, 2, rows, dim, hidden)[:, :, :, idx].reshape(own[name].shape)
            torch.testing.assert_close(mine, own[name])
    assert not torch.allclose(update[:, groups["conv"]].abs().mean(), update[:, groups["fc"]].abs().mean())


def test_a_flat_gradient_is_one_optimizee():
    net = _grouped().route(_interleaved())
    grad = torch.randn(7)
    update, _ = net(grad, net.init_state(7))
    batched, _ = net(grad[None], net.init_state(7))
    assert update.shape == (7,)
    torch.testing.assert_close(update, batched[0])


def test_missing_or_bad_routing_is_refused_with_what_to_do():
    net = _grouped()
    with pytest.raises(ValueError, match=r"no routing for optimizees of 7 coordinates.*net.route\(problem.groups"):
        net(torch.zeros(1, 7), net.init_state(7))
    with pytest.raises(ValueError, match="exactly one group"):
        net.route({"conv": torch.tensor([0, 1]), "fc": torch.tensor([1, 2])})
    with pytest.raises(ValueError, match="exactly one group"):
        net.route({"conv": torch.tensor([0, 1]), "fc": torch.tensor([], dtype=torch.long)})
    with pytest.raises(ValueError, match="one LSTM for each of"):
        net.route({"conv": torch.arange(3)})
    with pytest.raises(ValueError, match="quadratic has none"):
        route_for(net, l2l.QuadraticProblem())
    with pytest.raises(ValueError, match="at least two groups"):
        GroupedConfig.same(l2l.OptimizerConfig(), ["conv"])
    with pytest.raises(ValueError, match="state shapes"):
        GroupedConfig((("conv", l2l.OptimizerConfig()), ("fc", l2l.OptimizerConfig(hidden_size=8))))


def test_checkpoints_round_trip_and_refuse_the_other_kind(tmp_path):
    """A grouped network saves and loads as itself; a one-LSTM checkpoint is refused as a grouped one (and the
    reverse), naming both kinds."""
    net = _grouped(3)
    path = l2l.save_checkpoint(tmp_path / "two.pt", net)
    loaded, _ = l2l.load_optimizer(path)
    assert isinstance(loaded, GroupedLSTM) and loaded.config == net.config
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    one = l2l.save_checkpoint(tmp_path / "one.pt", l2l.CoordinatewiseLSTM())
    with pytest.raises(ValueError, match=r"holds one LSTM for every parameter but this network has one LSTM per"):
        load_state_into(_grouped(), read_checkpoint(one), "one.pt")
    with pytest.raises(ValueError, match=r"holds one LSTM per parameter group \(conv, fc\) but this network has one"):
        load_state_into(l2l.CoordinatewiseLSTM(), read_checkpoint(path), "two.pt")
    wider = GroupedLSTM(GroupedConfig.same(l2l.OptimizerConfig(hidden_size=8), ("conv", "fc")))
    with pytest.raises(ValueError, match=r"hidden_size \(group conv\): checkpoint 20 vs network 8"):
        load_state_into(wider, read_checkpoint(path), "two.pt")
    with pytest.raises(ValueError, match="one LSTM per parameter group"):
        load_state_into(_grouped(names=("a", "b")), read_checkpoint(path), "two.pt")


def _tiny_conv() -> ConvProblem:
    return ConvProblem(synthetic(n=32, size=8), channels=2, kernel=3, conv_layers=1, hidden=4, batch_size=4)


def test_meta_training_a_grouped_optimizer_on_the_convnet_saves_and_resumes(tmp_path):
    """meta_train routes the convnet's groups itself; the checkpoint resumes into the same weights as an
    uninterrupted run (bit for bit, as for one LSTM)."""
    problem = _tiny_conv()
    config = l2l.MetaTrainConfig(epochs=4, steps=6, unroll=3, val_every=2, val_tasks=1, checkpoint_every=2, lr=0.01)
    torch.manual_seed(0)
    straight = _grouped(0)
    l2l.meta_train(straight, problem, config, progress=False)
    torch.manual_seed(0)
    first = _grouped(0)
    half = l2l.MetaTrainConfig(**{**config.__dict__, "epochs": 2})
    l2l.meta_train(first, problem, half, checkpoint_path=tmp_path / "run.pt", progress=False)
    resumed, _ = l2l.load_optimizer(tmp_path / "run.pt")
    assert isinstance(resumed, GroupedLSTM)
    l2l.meta_train(resumed, problem, config, checkpoint_path=tmp_path / "run.pt", resume=tmp_path / "run.pt")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    result = l2l.evaluate(l2l.LearnedRule(resumed), problem, n_tasks=2, steps=3)  # evaluate routes it too
    assert torch.isfinite(result.losses).all()


def test_the_torch_optim_face_matches_the_flat_step():
    """LearnedOptimizer with net.param_groups on the convnet's nn twin makes the same step as the grouped network
    on the flat gradient routed by problem.groups()."""
    problem = _tiny_conv()
    net = _grouped(1).route(problem.groups())
    torch.manual_seed(0)
    model = problem.model().train()
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(model(x), y).backward()
    flat_grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    update, _ = net(flat_grad[None], net.init_state(problem.dim))
    kinds = [group for group, _, _, _ in problem.kinds]
    params = list(model.parameters())
    by_group = {g: [p for p, k in zip(params, kinds, strict=True) if k == g] for g in ("conv", "fc")}
    opt = l2l.LearnedOptimizer(net.param_groups(by_group))
    opt.step()
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(after - before, update[0], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="must be a CoordinatewiseLSTM"):
        l2l.LearnedOptimizer(model.parameters(), net)  # type: ignore[arg-type]


def test_stacked_meta_training_refuses_grouped_networks():
    with pytest.raises(ValueError, match="not single CoordinatewiseLSTMs"):
        l2l.meta_train_stack([_grouped()], _tiny_conv(), [l2l.MetaTrainConfig(epochs=1)])


def test_build_optimizer_rebuilds_either_kind():
    assert isinstance(build_optimizer(l2l.OptimizerConfig()), l2l.CoordinatewiseLSTM)
    grouped = build_optimizer(GroupedConfig.same(l2l.OptimizerConfig(), ("conv", "fc")))
    assert isinstance(grouped, GroupedLSTM) and list(grouped.nets) == ["conv", "fc"]
    assert l2l.config_from_dict(grouped.config.to_dict()) == grouped.config
