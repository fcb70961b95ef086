"""The functional baselines against torch.optim, step by step."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from l2l_helpers.optimizer.baselines import BASELINES, DEFAULT_LR_GRID, NAG, SGD, Adam, RMSprop, make_baseline

STEPS = 10


def fixed_function(x):
    """A fixed non-quadratic function of a (4, 3) parameter, so gradients change along the run."""
    a = torch.linspace(-1, 2, x.numel(), dtype=x.dtype).reshape(x.shape)
    return ((x - a) ** 2).sum() + torch.sin(3 * x).sum() + 0.1 * (x**4).sum()


def run_functional(rule, x0, grad_fn):
    """Iterates of theta <- theta + update with the functional rule."""
    theta = x0.clone()
    state = rule.init_state(theta)
    out = []
    for t in range(STEPS):
        g = grad_fn(theta, t)
        update, state = rule.step(g, state)
        theta = theta + update
        out.append(theta.clone())
    return out


def run_torch(make_opt, x0, grad_fn):
    """Iterates of a torch.optim optimizer fed the same gradients."""
    p = torch.nn.Parameter(x0.clone())
    opt = make_opt([p])
    out = []
    for t in range(STEPS):
        p.grad = grad_fn(p.detach().clone(), t)
        opt.step()
        out.append(p.detach().clone())
    return out


def grad_of_fixed_function(theta, t):
    """The gradient of fixed_function at theta."""
    x = theta.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(fixed_function(x), x)
    return g


def random_grads(dtype):
    """A fixed sequence of random gradients of mixed magnitudes, independent of theta."""
    gen = torch.Generator().manual_seed(7)
    seq = [torch.randn(4, 3, generator=gen, dtype=dtype) * 10.0 ** (t % 4 - 2) for t in range(STEPS)]
    return lambda theta, t: seq[t].clone()


CASES = [
    ("sgd", lambda: SGD(0.05), lambda ps: torch.optim.SGD(ps, lr=0.05)),
    ("nag", lambda: NAG(0.05, 0.9), lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True)),
    ("rmsprop", lambda: RMSprop(0.01), lambda ps: torch.optim.RMSprop(ps, lr=0.01)),
    ("adam", lambda: Adam(0.03), lambda ps: torch.optim.Adam(ps, lr=0.03)),
    ("adam-betas", lambda: Adam(0.1, betas=(0.5, 0.9)), lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.9))),
    ("rmsprop-alpha", lambda: RMSprop(0.02, alpha=0.9), lambda ps: torch.optim.RMSprop(ps, lr=0.02, alpha=0.9)),
]


@pytest.mark.parametrize(("name", "ours", "theirs"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("gradients", ["function", "random"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_optim(name, ours, theirs, gradients, dtype):
    """Ten steps of each baseline give the same iterates as the torch.optim optimizer."""
    x0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)
    grad_fn = grad_of_fixed_function if gradients == "function" else random_grads(dtype)
    a = run_functional(ours(), x0, grad_fn)
    b = run_torch(theirs, x0, grad_fn)
    assert not torch.equal(a[-1], x0)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        torch.testing.assert_close(x, y, rtol=tol, atol=tol, msg=f"{name}: step {t + 1} differs")


def test_rules_work_on_task_batches():
    """The rules act elementwise, so a (n_tasks, dim) batch equals running each row alone."""
    torch.manual_seed(0)
    grads = [torch.randn(3, 5) for _ in range(4)]
    for cls in (SGD, NAG, RMSprop, Adam):
        rule = cls(0.1)
        state = rule.init_state(grads[0])
        rows = [rule.init_state(grads[0][i]) for i in range(3)]
        for g in grads:
            update, state = rule.step(g, state)
            for i in range(3):
                u_i, rows[i] = rule.step(g[i], rows[i])
                torch.testing.assert_close(update[i], u_i)


def test_make_baseline_names():
    """make_baseline builds each class, any case, passing extra keyword arguments on."""
    for name, cls in BASELINES.items():
        rule = make_baseline(name.upper(), 0.1)
        assert isinstance(rule, cls) and rule.lr == 0.1
    assert make_baseline("nag", 0.1, momentum=0.5).momentum == 0.5


@pytest.mark.parametrize("name", ["sgdd", "lbfgs", ""])
def test_make_baseline_unknown(name):
    """An unknown name is a ValueError listing the known ones."""
    with pytest.raises(ValueError, match=r"unknown.*sgd.*adam"):
        make_baseline(name, 0.1)


@pytest.mark.parametrize("lr", [0, 0.0, -1e-3, math.inf, math.nan, True, "0.1"])
@pytest.mark.parametrize("name", list(BASELINES))
def test_make_baseline_bad_lr(name, lr):
    """lr must be a positive finite number."""
    with pytest.raises(ValueError, match=r"lr="):
        make_baseline(name, lr)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: NAG(0.1, momentum=1.0), "momentum"),
        (lambda: NAG(0.1, momentum=-0.1), "momentum"),
        (lambda: RMSprop(0.1, alpha=1.5), "alpha"),
        (lambda: Adam(0.1, betas=(1.0, 0.999)), "beta1"),
        (lambda: Adam(0.1, betas=(0.9, -0.1)), "beta2"),
    ],
)
def test_bad_fractions(make, field):
    """Momentum-like constants outside [0, 1) are a ValueError naming the parameter."""
    with pytest.raises(ValueError, match=rf"{field}="):
        make()


def test_default_lr_grid():
    """The tuning grid is strictly increasing, half decades from 1e-4 to 10."""
    grid = DEFAULT_LR_GRID
    assert all(a < b for a, b in itertools.pairwise(grid))
    assert grid[0] == pytest.approx(1e-4) and grid[-1] == pytest.approx(10.0)
    assert len(grid) == 11
    for a, b in itertools.pairwise(grid):
        assert b / a == pytest.approx(math.sqrt(10), rel=1e-6)
