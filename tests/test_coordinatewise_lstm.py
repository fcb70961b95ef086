"""The coordinatewise LSTM optimizer network against a per-coordinate loop of torch.nn.LSTMCell."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule, OptimizerConfig, count_parameters
from l2l_helpers.optimizer.preprocessing import preprocess


def reference_cells(net):
    """Independent copies of the net's layers: a list of LSTMCell and the output Linear."""
    cfg = net.config
    sizes = [cfg.input_size] + [cfg.hidden_size] * cfg.num_layers
    cells = []
    for i, cell in enumerate(net.cells):
        ref = nn.LSTMCell(sizes[i], sizes[i + 1]).to(torch.float64)
        ref.load_state_dict(cell.state_dict())
        cells.append(ref)
    out = nn.Linear(cfg.hidden_size, 1).to(torch.float64)
    out.load_state_dict(net.output.state_dict())
    return cells, out


def reference_step(net, cells, out, grad, hs, cs):
    """One step, one coordinate at a time: returns (updates, new hs, new cs) as lists per coordinate."""
    cfg = net.config
    flat = grad.reshape(-1)
    updates, new_hs, new_cs = [], [], []
    for i in range(flat.numel()):
        x = preprocess(flat[i : i + 1], cfg.preprocessing, cfg.p)  # (1, input_size)
        h_i, c_i = [], []
        for layer, cell in enumerate(cells):
            h, c = cell(x, (hs[i][layer], cs[i][layer]))
            h_i.append(h)
            c_i.append(c)
            x = h
        updates.append(out(x)[0, 0] * cfg.output_scale)
        new_hs.append(h_i)
        new_cs.append(c_i)
    return torch.stack(updates).reshape(grad.shape), new_hs, new_cs


@pytest.mark.parametrize(
    "config",
    [
        OptimizerConfig(num_layers=2, hidden_size=5, preprocessing="log_sign", output_scale=0.7),
        OptimizerConfig(num_layers=1, hidden_size=4, preprocessing="none", output_scale=2.0),
        OptimizerConfig(num_layers=3, hidden_size=3, preprocessing="log_sign_smooth", p=5.0, output_scale=0.1),
    ],
    ids=["2x5-log_sign", "1x4-none", "3x3-smooth"],
)
def test_matches_per_coordinate_lstm_cells(config):
    """Updates and carried states over several steps equal an independent per-coordinate LSTMCell stack."""
    torch.manual_seed(0)
    net = CoordinatewiseLSTM(config).double()
    with torch.no_grad():  # make the output layer non-trivial (it is scaled by 0.1 and zero bias at init)
        net.output.weight.normal_()
        net.output.bias.normal_()
    cells, out = reference_cells(net)
    shape = (3, 2)
    n = 6
    state = net.init_state(n)
    assert state.dtype == torch.float64
    zero = torch.zeros(1, config.hidden_size, dtype=torch.float64)
    hs = [[zero] * config.num_layers for _ in range(n)]
    cs = [[zero] * config.num_layers for _ in range(n)]
    with torch.no_grad():
        for step in range(4):
            grad = torch.randn(shape, dtype=torch.float64) * 10.0 ** torch.randint(-7, 2, shape).double()
            update, state = net(grad, state)
            ref_update, hs, cs = reference_step(net, cells, out, grad, hs, cs)
            assert update.shape == shape
            torch.testing.assert_close(update, ref_update, rtol=1e-10, atol=1e-12)
            assert state.shape == (config.num_layers, 2, n, config.hidden_size)
            for i in range(n):
                for layer in range(config.num_layers):
                    torch.testing.assert_close(state[layer, 0, i], hs[i][layer][0], rtol=1e-10, atol=1e-12)
                    torch.testing.assert_close(state[layer, 1, i], cs[i][layer][0], rtol=1e-10, atol=1e-12)
            assert update.abs().max() > 1e-3, f"step {step}: the update is trivially small"


def analytic_count(num_layers, hidden, n_in):
    """LSTM layer: 4 gates x (input weights + recurrent weights + two biases); then Linear(hidden, 1)."""
    total = 0
    for layer in range(num_layers):
        inp = n_in if layer == 0 else hidden
        total += 4 * hidden * (inp + hidden) + 2 * 4 * hidden
    return total + hidden + 1


@pytest.mark.parametrize(
    ("num_layers", "hidden", "kind", "n_in"),
    [(2, 20, "log_sign", 2), (1, 3, "none", 1), (3, 7, "log_sign_smooth", 2)],
)
def test_parameter_count(num_layers, hidden, kind, n_in):
    """The parameter count is the analytic one and does not depend on the number of coordinates."""
    net = CoordinatewiseLSTM(num_layers=num_layers, hidden_size=hidden, preprocessing=kind)
    expected = analytic_count(num_layers, hidden, n_in)
    assert count_parameters(net) == expected
    before = count_parameters(net)
    for n in (1, 10, 1000):
        net(torch.randn(n), net.init_state(n))
        assert count_parameters(net) == before


def test_paper_default_parameter_count():
    """Two layers of 20 units on 2 inputs: 5,301 parameters."""
    assert count_parameters(CoordinatewiseLSTM()) == 4 * 20 * 22 + 160 + 4 * 20 * 40 + 160 + 21 == 5301


@pytest.mark.parametrize("shape", [(), (3,), (4, 5), (2, 1, 3)])
def test_output_shape_equals_grad_shape(shape):
    """The update has the gradient's shape, the state (layers, 2, N, hidden)."""
    net = CoordinatewiseLSTM(num_layers=2, hidden_size=4)
    grad = torch.randn(shape)
    n = grad.numel()
    update, state = net(grad, net.init_state(n))
    assert update.shape == grad.shape
    assert state.shape == (2, 2, n, 4)


def test_permutation_equivariance():
    """Permuting coordinates (and their states) permutes the updates and states the same way."""
    torch.manual_seed(3)
    net = CoordinatewiseLSTM(num_layers=2, hidden_size=6).double()
    n = 9
    grad = torch.randn(n, dtype=torch.float64)
    state = torch.randn(2, 2, n, 6, dtype=torch.float64)
    perm = torch.randperm(n)
    update, new_state = net(grad, state)
    p_update, p_state = net(grad[perm], state[:, :, perm])
    torch.testing.assert_close(p_update, update[perm], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(p_state, new_state[:, :, perm], rtol=1e-12, atol=1e-14)
    # and each coordinate's update does not depend on the others
    single, _ = net(grad[:1], state[:, :, :1])
    torch.testing.assert_close(single, update[:1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bad_shape", [(2, 2, 4, 5), (2, 2, 3, 4), (1, 2, 3, 5), (2, 3, 5), (2, 1, 3, 5)])
def test_wrong_state_shape(bad_shape):
    """A state of the wrong shape is a ValueError saying how to make one."""
    net = CoordinatewiseLSTM(num_layers=2, hidden_size=5)
    with pytest.raises(ValueError, match="init_state"):
        net(torch.randn(3), torch.zeros(bad_shape))


def test_init_state_dtype_and_zero():
    """init_state is zero, of the net's dtype unless told otherwise."""
    net = CoordinatewiseLSTM(num_layers=1, hidden_size=2)
    s = net.init_state(4)
    assert s.shape == (1, 2, 4, 2) and s.dtype == torch.float32 and not s.any()
    assert net.init_state(4, dtype=torch.float64).dtype == torch.float64


def test_untrained_output_layer_starts_small():
    """At initialisation the output bias is zero and its weights are 0.1 x nn.Linear's default bound."""
    torch.manual_seed(0)
    net = CoordinatewiseLSTM(hidden_size=20)
    assert not net.output.bias.any()
    assert 0 < net.output.weight.abs().max() <= 0.1 / 20**0.5


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_layers": 0}, "num_layers"),
        ({"num_layers": 1.5}, "num_layers"),
        ({"num_layers": True}, "num_layers"),
        ({"hidden_size": -1}, "hidden_size"),
        ({"preprocessing": "foo"}, "preprocessing"),
        ({"p": 0.0}, "p"),
        ({"output_scale": 0}, "output_scale"),
        ({"output_scale": -0.1}, "output_scale"),
        ({"output_scale": float("inf")}, "output_scale"),
    ],
)
def test_config_validation(kwargs, name):
    """Bad settings are a ValueError naming the parameter."""
    with pytest.raises(ValueError, match=rf"\b{name}="):
        OptimizerConfig(**kwargs)
    with pytest.raises(ValueError, match=rf"\b{name}="):
        CoordinatewiseLSTM(**kwargs)


def test_config_round_trip():
    """to_dict / from_dict give back an equal config; unknown keys are rejected."""
    cfg = OptimizerConfig(num_layers=3, hidden_size=7, preprocessing="log_sign_smooth", p=5.0, output_scale=0.01)
    d = cfg.to_dict()
    assert d == {"num_layers": 3, "hidden_size": 7, "preprocessing": "log_sign_smooth", "p": 5.0, "output_scale": 0.01}
    assert OptimizerConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match=r"unknown optimizer config keys.*extra"):
        OptimizerConfig.from_dict({**d, "extra": 1})


def test_overrides():
    """Keyword overrides apply on top of a given config."""
    net = CoordinatewiseLSTM(OptimizerConfig(hidden_size=3), num_layers=1)
    assert net.config == OptimizerConfig(hidden_size=3, num_layers=1)


def test_learned_rule_is_the_net():
    """LearnedRule.step is the net's forward; init_state matches theta's size and dtype."""
    torch.manual_seed(0)
    net = CoordinatewiseLSTM(num_layers=1, hidden_size=3).double()
    rule = LearnedRule(net)
    theta = torch.randn(2, 5, dtype=torch.float64)
    state = rule.init_state(theta)
    assert state.shape == (1, 2, 10, 3) and state.dtype == torch.float64
    grad = torch.randn(2, 5, dtype=torch.float64)
    u1, s1 = rule.step(grad, state)
    u2, s2 = net(grad, state)
    assert torch.equal(u1, u2) and torch.equal(s1, s2)
