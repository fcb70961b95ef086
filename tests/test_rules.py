"""l2l_helpers.evaluation.rules: the claim rules are symmetric (reproduced only when the data show it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.evaluation.loops import EvalResult


def ends(name, finals, steps=4):
    """An EvalResult whose tasks fall linearly from 1.0 to ``finals``."""
    finals = torch.as_tensor(finals, dtype=torch.float64)
    frac = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    return EvalResult(name, 1.0 + (finals.unsqueeze(1) - 1.0) * frac)


RNG = np.random.default_rng(0)
BASE = RNG.uniform(0.4, 0.6, 12)


def test_beats_baselines_decides_on_the_final_loss_and_shows_the_sum_against_sum_tuned_baselines():
    run = {"LSTM": ends("LSTM", BASE * 0.8), "Adam": ends("Adam", BASE)}
    summed = {"LSTM": run["LSTM"], "Adam": ends("Adam", BASE * 0.5)}  # tuned for the sum: a different rate
    row = l2l.rules.beats_baselines([run], sum_runs=[summed])
    assert row["verdict"] == "reproduced" and row["n"] == 12 and row["seeds"] == 1
    assert "sum of losses (baselines tuned for it): not reproduced" in row["ours"]
    assert row["ratio"] == pytest.approx(0.8)


def test_keeps_improving_is_a_paired_comparison_of_the_same_tasks_at_two_steps():
    falling = {"s0": ends("s0", BASE * 0.5, steps=8), "s1": ends("s1", BASE * 0.6, steps=8)}
    row = l2l.rules.keeps_improving(falling, 4, 8)
    assert row["verdict"] == "reproduced" and row["seeds"] == 2 and row["n"] == 12 and row["interval"][1] < 1
    losses = torch.cat([falling["s0"].losses[:, :5], falling["s0"].losses[:, 4:5].expand(-1, 4) * 1.5], dim=1)
    rising = {"s0": EvalResult("s0", losses)}
    assert l2l.rules.keeps_improving(rising, 4, 8)["verdict"] == "not reproduced"
    flat = {"s0": EvalResult("s0", torch.cat([losses[:, :5], losses[:, 4:5].expand(-1, 4)], dim=1))}
    noisy = flat["s0"].losses.clone()
    noisy[:, 8] *= torch.as_tensor(RNG.choice([0.9, 1.1], 12))
    assert l2l.rules.keeps_improving({"s0": EvalResult("s0", noisy)}, 4, 8)["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="after"):
        l2l.rules.keeps_improving(falling, 8, 4)


def test_window_levels_average_the_steps_up_to_one():
    r = EvalResult("x", torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]]))
    assert l2l.rules.window_levels(r, 4, 2) == pytest.approx([1.5])
    assert l2l.rules.window_levels(r, 2) == pytest.approx([3.0])
    with pytest.raises(ValueError, match="step"):
        l2l.rules.window_levels(r, 1, 2)


def seeds(lstm_factor, adam_factor=1.0, noise=0.0, k=3):
    """k comparisons (seeds) of an LSTM at ``lstm_factor`` times the tasks' base level against Adam."""
    out = []
    for _ in range(k):
        jitter = np.exp(noise * RNG.standard_normal(12))
        out.append({"LSTM": ends("LSTM", BASE * lstm_factor * jitter), "Adam": ends("Adam", BASE * adam_factor)})
    return out


def test_edge_lost_needs_evidence_that_the_edge_is_gone():
    """Reproduced only when the data show the loss: a baseline clearly lower, or the ratio clearly higher; an
    inconclusive comparison under the change is not evidence (the rule that counted it so is gone)."""
    sigmoid = seeds(0.8)
    assert l2l.rules.edge_lost(sigmoid, seeds(1.3))["verdict"] == "reproduced"  # Adam clearly lower under ReLU
    kept = l2l.rules.edge_lost(sigmoid, seeds(0.8))
    assert kept["verdict"] == "not reproduced"  # it still beats Adam
    # the ratio rises from 0.8 to about 1.0, clearly, while the comparison under the change is inconclusive
    assert l2l.rules.edge_lost(sigmoid, seeds(1.0, noise=0.05))["verdict"] == "reproduced"
    # no clear change of ratio and no clear loser: inconclusive, not reproduced
    wide = seeds(0.9, noise=0.6)
    assert l2l.rules.edge_lost(seeds(0.8, noise=0.6), wide)["verdict"] in ("inconclusive", "not reproduced")
    assert l2l.rules.edge_lost(seeds(1.3), seeds(1.3))["verdict"] == "not reproduced"  # no edge to lose


def test_edge_lost_with_too_few_networks_says_so():
    few = [{"LSTM": ends("LSTM", [0.1, 0.2, 0.3]), "Adam": ends("Adam", [0.2, 0.3, 0.4])}]
    assert l2l.rules.edge_lost(few, few)["verdict"] == "too few tasks"
    with pytest.raises(ValueError, match="one comparison per seed"):
        l2l.rules.edge_lost(few, few * 2)
