"""Notebook 08's written-out Kolmogorov-Smirnov distance against the package's and against scipy's (oracle).

The notebook's cell marked ``# ks_by_hand`` writes the two-sample KS statistic out (sort both samples, evaluate both
empirical CDFs on the pooled values, take the largest absolute difference): the distance by which the notebook
compares the LSTM optimizer's preprocessed inputs on sigmoid and ReLU networks (paper, Section 3.2, Figure 5 right).
These tests run its function on fresh samples, with ties and unequal sizes, against ``l2l.ks_distance``,
``scipy.stats.ks_2samp``'s statistic and hand-computed values, and run the cell as the notebook does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import cell_functions
from helpers import teaching_cell as notebook_cell
from scipy import stats

import l2l_helpers as l2l

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "08_relu_failure.ipynb"
MARKER = "# ks_by_hand"


def teaching_cell() -> str:
    """The source of the notebook's cell that writes the KS distance out."""
    return notebook_cell(NOTEBOOK, MARKER)


def ks_by_hand() -> Callable[[np.ndarray, np.ndarray], float]:
    """The function the cell defines, and nothing else of the cell, in a namespace holding only numpy."""
    return cell_functions(NOTEBOOK, MARKER, {"np": np}, ["ks_by_hand"])["ks_by_hand"]


def log_channel(n: int, zero_share: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """The LSTM's log-channel input for ``n`` gradients, a share of them exactly zero (as under ReLU): every
    gradient below e^-p enters as -1, so the sample holds many tied values."""
    grad = rng.normal(size=n) * scale * (rng.random(n) >= zero_share)
    return l2l.preprocess(torch.from_numpy(grad), "log_sign", 10.0)[:, 0].numpy()


def samples() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fresh pairs of samples: continuous, tied, unequal sizes, identical, disjoint, tiny, 2-D."""
    rng = np.random.default_rng(8)
    return {
        "continuous, unequal sizes": (rng.normal(size=50), rng.normal(0.4, 1.3, size=173)),
        "integers, many ties": (rng.integers(0, 5, size=40).astype(float), rng.integers(1, 7, size=97).astype(float)),
        "ties across the samples only": (np.repeat([0.0, 1.0, 2.0], [3, 5, 2]), np.repeat([1.0, 2.0, 3.0], [4, 1, 6])),
        "log channels, sigmoid-like vs relu-like": (
            log_channel(600, 0.0, 1e-3, rng),
            log_channel(451, 0.4, 1e-2, rng),
        ),
        "identical": (np.arange(9.0), np.arange(9.0)),
        "same values, other multiplicities": (np.array([1.0, 1.0, 2.0]), np.array([1.0, 2.0, 2.0, 2.0])),
        "disjoint": (rng.normal(size=7), rng.normal(size=11) + 100),
        "one value each": (np.array([0.5]), np.array([0.25])),
        "2-D arrays": (rng.normal(size=(6, 5)), rng.normal(0.5, size=(4, 3))),
    }


CASES = samples()


@pytest.mark.parametrize("case", CASES)
def test_written_out_distance_is_the_packages(case):
    a, b = CASES[case]
    assert ks_by_hand()(a, b) == l2l.ks_distance(a, b)


@pytest.mark.parametrize("case", CASES)
def test_written_out_distance_is_scipys_statistic(case):
    """The oracle: scipy's two-sample KS statistic (ties and unequal sizes included), both orders of the samples."""
    a, b = CASES[case]
    mine = ks_by_hand()
    oracle = stats.ks_2samp(np.ravel(a), np.ravel(b)).statistic
    assert mine(a, b) == pytest.approx(oracle, abs=1e-12)
    assert mine(b, a) == pytest.approx(oracle, abs=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ([1, 2, 2, 3], [2, 4], 0.5),  # at 3: F_a = 1, F_b = 1/2
        ([0, 0, 0], [0, 0, 1], 1 / 3),  # a tie at 0: F_a(0) = 1, F_b(0) = 2/3
        ([1, 2, 3], [1, 2, 3, 3, 3, 3], 1 / 3),  # at 2: F_a = 2/3, F_b = 2/6 (at 1: 1/3 against 1/6)
        ([5], [1, 2, 3, 4], 1.0),
    ],
)
def test_written_out_distance_on_hand_computed_cases(a, b, distance):
    """Small samples whose CDFs are counted by hand (the comments give the largest gap)."""
    assert ks_by_hand()(np.array(a, float), np.array(b, float)) == pytest.approx(distance, abs=1e-15)


def merged_walk(a: np.ndarray, b: np.ndarray) -> float:
    """A wrong KS distance: walk the merged sorted samples one value at a time (a's ties first), so that the CDFs are
    compared halfway through a run of tied values."""
    pooled = np.concatenate([a, b])
    from_a = (np.arange(pooled.size) < a.size)[np.argsort(pooled, kind="stable")]
    return float(np.abs(np.cumsum(from_a) / a.size - np.cumsum(~from_a) / b.size).max())


def test_the_tie_cases_can_fail():
    """The cases catch a distance that mishandles ties: the merged walk agrees on continuous samples, not on ties."""
    continuous = CASES["continuous, unequal sizes"]
    assert merged_walk(*continuous) == pytest.approx(stats.ks_2samp(*continuous).statistic, abs=1e-12)
    for case in ("integers, many ties", "same values, other multiplicities"):
        a, b = CASES[case]
        assert merged_walk(a, b) != pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-6), case
        assert ks_by_hand()(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_the_notebook_cell_runs_and_matches_the_table():
    """The cell as the notebook runs it, on samples of the LSTM's inputs, beside the table's distance."""
    rng = np.random.default_rng(0)
    inputs = {"sigmoid": {"log_channel": log_channel(300, 0.0, 1e-3, rng)}}
    inputs["relu"] = {"log_channel": log_channel(200, 0.5, 1e-2, rng)}
    table = l2l.ks_distance(inputs["sigmoid"]["log_channel"], inputs["relu"]["log_channel"])
    namespace = {"np": np, "inputs": inputs, "shift": SimpleNamespace(ks={"relu": {"LSTM": table}})}
    exec(compile(teaching_cell(), str(NOTEBOOK), "exec"), namespace)
    assert namespace["by_hand"] == table
    assert 0.2 < table < 1  # a real shift, not two empty distances agreeing
