"""LearnedOptimizer with one network per parameter group (Section 3.3: one LSTM per layer type)."""

from __future__ import annotations

import io

import pytest
import torch

import l2l_helpers as l2l


def _model_and_grads(seed: int = 0) -> tuple[torch.nn.Sequential, list[torch.Tensor]]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    grads = [torch.randn_like(p) for p in model.parameters()]
    return model, grads


def _step(opt: torch.optim.Optimizer, model: torch.nn.Module, grads: list[torch.Tensor]) -> None:
    for p, g in zip(model.parameters(), grads, strict=True):
        p.grad = g.clone()
    opt.step()


def test_each_group_is_updated_by_its_own_network_with_its_own_state():
    torch.manual_seed(1)
    net_a, net_b = l2l.CoordinatewiseLSTM(), l2l.CoordinatewiseLSTM(hidden_size=8)
    with torch.no_grad():
        net_a.output.weight.mul_(10)  # the two networks propose clearly different steps
    model, grads = _model_and_grads()
    first, second = list(model[0].parameters()), list(model[1].parameters())
    opt = l2l.LearnedOptimizer([{"params": first, "net": net_a}, {"params": second, "net": net_b}])
    alone_a, _ = _model_and_grads()
    alone_b, _ = _model_and_grads()
    only_a = l2l.LearnedOptimizer(alone_a[0].parameters(), net_a)
    only_b = l2l.LearnedOptimizer(alone_b[1].parameters(), net_b)
    for _ in range(3):
        _step(opt, model, grads)
        _step(only_a, alone_a[0], grads[:2])
        _step(only_b, alone_b[1], grads[2:])
    for p, q in zip(model[0].parameters(), alone_a[0].parameters(), strict=True):
        torch.testing.assert_close(p, q)
    for p, q in zip(model[1].parameters(), alone_b[1].parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert opt.state[model[0].weight]["lstm"].shape == (2, 2, 12, 20)
    assert opt.state[model[1].weight]["lstm"].shape == (2, 2, 6, 8)


def test_a_group_without_a_network_takes_the_default_and_none_is_an_error():
    net, other = l2l.CoordinatewiseLSTM(), l2l.CoordinatewiseLSTM()
    model, _ = _model_and_grads()
    groups = [{"params": model[0].parameters()}, {"params": model[1].parameters(), "net": other}]
    opt = l2l.LearnedOptimizer(groups, net)
    assert opt._nets == [net, other]
    with pytest.raises(ValueError, match="no optimizer network"):
        l2l.LearnedOptimizer([{"params": model[0].parameters()}])
    with pytest.raises(ValueError, match="must be a CoordinatewiseLSTM"):
        l2l.LearnedOptimizer([{"params": model[0].parameters(), "net": torch.nn.Linear(1, 1)}])


def test_state_dict_keeps_the_states_not_the_networks():
    net_a, net_b = l2l.CoordinatewiseLSTM(), l2l.CoordinatewiseLSTM()
    model, grads = _model_and_grads()
    groups = [{"params": model[0].parameters(), "net": net_a}, {"params": model[1].parameters(), "net": net_b}]
    opt = l2l.LearnedOptimizer(groups)
    _step(opt, model, grads)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # plain tensors and numbers: no pickled module
    assert all("net" not in group for group in saved["param_groups"])
    again = l2l.LearnedOptimizer(
        [{"params": model[0].parameters(), "net": net_a}, {"params": model[1].parameters(), "net": net_b}]
    )
    again.load_state_dict(saved)
    assert torch.equal(again.state[model[1].weight]["lstm"], opt.state[model[1].weight]["lstm"])
