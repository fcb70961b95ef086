"""l2l_helpers.evaluation.comparison: the same held-out tasks for everyone, verdicts and tables."""

from __future__ import annotations

import math

import pytest
import torch

import l2l_helpers as l2l


def result(name: str, finals: list[float], lr: float | None = None) -> l2l.EvalResult:
    """An EvalResult whose curves start at 1 and end at ``finals``."""
    final = torch.tensor(finals)
    return l2l.EvalResult(name, torch.stack([torch.ones_like(final), final], 1), lr)


def test_beats_compares_mean_final_losses():
    """LSTM wins only if it is strictly below every other; diverged (inf/NaN) runs always lose."""
    results = {"LSTM": result("LSTM", [0.1, 0.3]), "Adam": result("Adam", [0.2, 0.4]), "SGD": result("SGD", [0.1])}
    holds, text = l2l.beats(results, "LSTM", ["Adam"])
    assert holds and text == "LSTM 0.2 vs Adam 0.3"
    assert not l2l.beats(results)[0]  # SGD has the same mean 0.1 < 0.2
    assert l2l.beats({"LSTM": result("LSTM", [1.0]), "NAG": result("NAG", [math.nan])})[0]
    assert not l2l.beats({"LSTM": result("LSTM", [math.inf]), "NAG": result("NAG", [1e9])})[0]
    with pytest.raises(ValueError, match="learned='RNN'"):
        l2l.beats(results, "RNN")


def test_comparison_markdown_sorted_by_final_loss():
    """Best first; a learned optimizer has no learning rate."""
    table = l2l.comparison_markdown({"Adam": result("Adam", [0.5], 0.01), "LSTM": result("LSTM", [0.25])})
    rows = table.splitlines()[2:]
    assert rows[0].startswith("| LSTM | learned | 0.25") and rows[1].startswith("| Adam | 0.01 | 0.5")


def test_tuning_and_held_out_comparison_use_the_right_tasks():
    """Baselines are tuned on training tasks and everyone is tested on the same held-out tasks."""
    problem = l2l.QuadraticProblem()
    tuned = l2l.tune_baselines(problem, ("SGD", "Adam"), grid=(1e-3, 1e-2, 1e-1), n_tasks=3, steps=20, progress=False)
    assert set(tuned) == {"SGD", "Adam"}
    for t in tuned.values():
        assert t.best_lr == min(t.scores, key=t.scores.get)
    train_scores = l2l.evaluate(l2l.make_baseline("SGD", 1e-2), problem, 3, 20, split="train").mean_final
    assert tuned["SGD"].scores[1e-2] == pytest.approx(train_scores)
    results = l2l.held_out_comparison(problem, {"LSTM": l2l.CoordinatewiseLSTM()}, tuned, 4, 20, progress=False)
    assert list(results) == ["LSTM", "SGD", "Adam"]
    starts = [r.losses[:, 0] for r in results.values()]
    assert all(torch.equal(s, starts[0]) for s in starts)  # same tasks for everyone
    test_start = l2l.evaluate(l2l.make_baseline("SGD", 1.0), problem, 4, 1, split="dev").losses[:, 0]
    assert torch.equal(starts[0], test_start)
    assert results["Adam"].lr == tuned["Adam"].best_lr
    with pytest.raises(ValueError, match="names is empty"):
        l2l.tune_baselines(problem, ())


@pytest.mark.parametrize("family", ["quadratic", "mnist"])
def test_comparisons_at_horizons_equal_one_run_per_horizon(family):
    """Oracle: the learned optimizers run once, to the longest horizon; every horizon's comparison equals a separate
    held_out_comparison at that horizon (its first steps are the same trajectory), baselines with their own lrs."""
    from test_optimizees import synthetic_data

    problem = (
        l2l.QuadraticProblem()
        if family == "quadratic"
        else l2l.MNISTProblem(hidden=(5,), batch_size=8, data=synthetic_data())
    )
    torch.manual_seed(0)
    learned = {"LSTM s0": l2l.CoordinatewiseLSTM(), "LSTM s1": l2l.CoordinatewiseLSTM()}
    tuned_at = l2l.tune_baselines_at(
        problem, (6, 12), ("NAG", "Adam"), grid=(1e-3, 1e-2, 1e-1), n_tasks=2, progress=False
    )
    both = l2l.held_out_comparisons_at(problem, learned, tuned_at, 3, progress=False)
    assert list(both) == [6, 12]
    for steps, results in both.items():
        alone = l2l.held_out_comparison(problem, learned, tuned_at[steps], 3, steps, progress=False)
        assert list(results) == list(alone)
        for name, res in alone.items():
            torch.testing.assert_close(results[name].losses, res.losses, rtol=1e-6, atol=0)
            assert results[name].lr == res.lr and results[name].steps == steps
    with pytest.raises(ValueError, match="empty"):
        l2l.held_out_comparisons_at(problem, learned, {})
    with pytest.raises(ValueError, match="horizon"):
        both[6]["LSTM s0"].first(7)
