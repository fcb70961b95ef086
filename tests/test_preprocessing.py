"""Gradient preprocessing (paper, Appendix A) against the formulas written out independently."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from l2l_helpers.optimizer.preprocessing import PAPER_P, PREPROCESSING_INPUTS, log_sign, log_sign_smooth, preprocess


def paper_formula(g: float, p: float) -> tuple[float, float]:
    """The paper's piecewise preprocessing of one scalar, in plain Python."""
    if abs(g) >= math.exp(-p):
        return math.log(abs(g)) / p, float((g > 0) - (g < 0))
    return -1.0, math.exp(p) * g


def smooth_formula(g: float, p: float, eps: float) -> tuple[float, float]:
    """The authors' smooth variant of one scalar, in plain Python."""
    return max(math.log(abs(g) + eps) / p, -1.0), min(max(math.exp(p) * g, -1.0), 1.0)


def expected(values, p, formula, dtype, **kwargs):
    """Apply a scalar formula to every element and stack as (..., 2)."""
    return torch.tensor([formula(float(v), p, **kwargs) for v in values], dtype=dtype)


VALUES = [3.0, -3.0, 1.0, -1.0, 0.5, -1e-3, 1e-4, 2e-5, -4e-5, 1e-6, -1e-7, 3e-9, 0.0, 1e4, -2.5e6]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [PAPER_P, 5.0, 1.0])
def test_log_sign_matches_paper_formula(dtype, p):
    """Both branches, negatives and zero agree with the piecewise formula."""
    g = torch.tensor(VALUES, dtype=dtype)
    out = log_sign(g, p)
    ref = expected(g.tolist(), p, paper_formula, dtype)
    assert out.dtype == dtype
    assert out.shape == (len(VALUES), 2)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)


def test_log_sign_both_branches_are_exercised():
    """The test values above include coordinates on both sides of e^-p."""
    thr = math.exp(-PAPER_P)
    assert any(abs(v) >= thr for v in VALUES) and any(0 < abs(v) < thr for v in VALUES)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [PAPER_P, 3.0])
def test_log_sign_at_threshold(dtype, p):
    """At |g| = e^-p (as represented in dtype) both branches give (-1, sign g)."""
    thr = torch.tensor(math.exp(-p), dtype=dtype)
    g = torch.stack([thr, -thr])
    out = log_sign(g, p).double()
    for i, sign in enumerate((1.0, -1.0)):
        exact = paper_formula(float(g[i]), p)
        assert out[i, 0].item() == pytest.approx(exact[0], abs=1e-6)
        assert out[i, 0].item() == pytest.approx(-1.0, abs=1e-6)
        assert out[i, 1].item() == pytest.approx(sign, abs=1e-6)


def test_log_sign_just_below_threshold():
    """Just below e^-p the log channel is exactly -1 and the sign channel is e^p g, close to +-1."""
    p = PAPER_P
    g = torch.tensor([math.exp(-p) * (1 - 1e-9), -math.exp(-p) * (1 - 1e-9)], dtype=torch.float64)
    out = log_sign(g, p)
    assert out[:, 0].tolist() == [-1.0, -1.0]
    torch.testing.assert_close(out[:, 1], g * math.exp(p), rtol=0, atol=1e-15)
    assert 0.99 < out[0, 1].item() < 1.0 and -1.0 < out[1, 1].item() < -0.99


def test_log_sign_zero():
    """g = 0 gives (-1, 0), finite."""
    out = log_sign(torch.zeros(3))
    assert out.tolist() == [[-1.0, 0.0]] * 3


@pytest.mark.parametrize("shape", [(), (1,), (3,), (4, 5), (2, 3, 4)])
def test_log_sign_shapes(shape):
    """Output has shape grad.shape + (2,) and is the elementwise formula."""
    torch.manual_seed(0)
    g = torch.randn(shape, dtype=torch.float64) * torch.logspace(
        -8, 2, max(1, math.prod(shape)), dtype=torch.float64
    ).reshape(shape)
    out = log_sign(g)
    assert out.shape == (*shape, 2)
    ref = expected(g.reshape(-1).tolist(), PAPER_P, paper_formula, torch.float64).reshape(*shape, 2)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [5.0, PAPER_P])
def test_log_sign_smooth_matches_authors_formula(dtype, p):
    """The smooth variant is clamp(log(|g|+eps)/p, min -1), clamp(e^p g, -1, 1)."""
    g = torch.tensor(VALUES, dtype=dtype)
    eps = torch.finfo(dtype).eps
    out = log_sign_smooth(g, p)
    ref = expected(g.tolist(), p, smooth_formula, dtype, eps=eps)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)


def test_log_sign_smooth_default_p_is_5():
    """The smooth variant's default p is the authors' MNIST value 5."""
    g = torch.tensor([0.1, -2e-3], dtype=torch.float64)
    torch.testing.assert_close(log_sign_smooth(g), log_sign_smooth(g, 5.0))
    assert log_sign_smooth(g)[0, 0].item() == pytest.approx(math.log(0.1 + 2.220446049250313e-16) / 5)


@pytest.mark.parametrize("shape", [(), (7,), (2, 3)])
def test_preprocess_kinds(shape):
    """preprocess dispatches to the right formula and sizes match PREPROCESSING_INPUTS."""
    torch.manual_seed(1)
    g = torch.randn(shape, dtype=torch.float64) * 1e-3
    flat = g.reshape(-1).tolist()
    out = preprocess(g, "log_sign", 4.0)
    ref = expected(flat, 4.0, paper_formula, torch.float64).reshape(*shape, 2)
    torch.testing.assert_close(out, ref)
    out = preprocess(g, "log_sign_smooth", 4.0)
    ref = expected(flat, 4.0, smooth_formula, torch.float64, eps=torch.finfo(torch.float64).eps).reshape(*shape, 2)
    torch.testing.assert_close(out, ref)
    out = preprocess(g, "none")
    assert out.shape == (*shape, 1)
    assert torch.equal(out[..., 0], g)
    for kind, n in PREPROCESSING_INPUTS.items():
        assert preprocess(g, kind).shape == (*shape, n)


def test_preprocess_default_is_paper():
    """The default kind is the paper's log_sign with p = 10."""
    g = torch.tensor([1e-2, -1e-6, 0.0])
    torch.testing.assert_close(preprocess(g), expected(g.tolist(), 10.0, paper_formula, torch.float32))


def test_preprocess_unknown_kind():
    """An unknown kind is a ValueError naming the parameter and listing the known kinds."""
    with pytest.raises(ValueError, match=r"preprocessing='foo'.*log_sign"):
        preprocess(torch.ones(2), "foo")


@pytest.mark.parametrize("p", [0, 0.0, -1.0, math.inf, math.nan, "10"])
def test_preprocess_bad_p(p):
    """p must be a positive finite number."""
    with pytest.raises(ValueError, match=r"p="):
        preprocess(torch.ones(2), "log_sign", p)


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@pytest.mark.parametrize(("fn", "sign_may_vanish"), [(log_sign, False), (log_sign_smooth, True)])
@settings(max_examples=200, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=20), p=st.sampled_from([1.0, 5.0, 10.0]))
def test_log_sign_properties(fn, sign_may_vanish, values, p):
    """Finite in, finite out; log channel >= -1; sign channel in [-1, 1] with the sign of g
    (the smooth variant may also round it to 0)."""
    g = torch.tensor(values, dtype=torch.float32)
    out = fn(g, p)
    assert torch.isfinite(out).all()
    assert (out[:, 0] >= -1).all()
    assert (out[:, 1].abs() <= 1).all()
    s = torch.sign(out[:, 1])
    if sign_may_vanish:
        assert ((s == torch.sign(g)) | (s == 0)).all()
    else:
        assert torch.equal(s, torch.sign(g))
