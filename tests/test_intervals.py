"""l2l_helpers.evaluation.intervals: paired t-intervals on per-task log ratios and the verdicts claims get from them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.evaluation import intervals, verdicts
from l2l_helpers.evaluation.intervals import paired, per_task
from l2l_helpers.evaluation.loops import EvalResult
from l2l_helpers.evaluation.verdicts import combined, lower_than
from l2l_helpers.notebook import results


def result(name, finals, steps=3):
    """An EvalResult whose tasks end at ``finals``, with curves falling linearly from 1.0."""
    finals = torch.as_tensor(finals, dtype=torch.float32)
    frac = torch.linspace(0, 1, steps + 1)
    return EvalResult(name, 1.0 + (finals.unsqueeze(1) - 1.0) * frac)


def test_per_task_metrics_read_the_curves():
    r = EvalResult("x", torch.tensor([[5.0, 3.0, 2.0, 1.0], [4.0, 2.0, 2.0, 2.0]]))
    np.testing.assert_allclose(per_task(r, "final"), [1.0, 2.0])
    np.testing.assert_allclose(per_task(r, "sum"), [6.0, 6.0])  # steps 1..T, not theta_0
    np.testing.assert_allclose(per_task(r, "final", horizon=1), [3.0, 2.0])
    np.testing.assert_allclose(per_task(r, "sum", horizon=2), [5.0, 4.0])
    with pytest.raises(ValueError, match="metric"):
        per_task(r, "median")
    with pytest.raises(ValueError, match="horizon"):
        per_task(r, "final", horizon=4)


def test_pairing_sees_a_small_gap_that_two_means_hide():
    """Tasks spread 10x more than the gap between the optimizers: the paired interval still excludes 0."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 1.5, 20)
    a, b = base * 0.97, base
    p = paired(a, b, names=("LSTM", "Adam"))
    assert p.verdict == "reproduced" and p.ratio_interval[1] < 1
    assert p.ratio == pytest.approx(0.97) and p.ratio_interval[0] <= 0.97 <= p.ratio_interval[1]
    assert p.ratio_interval[1] - p.ratio_interval[0] < 1e-9  # every task has the same ratio
    assert paired(b, a).verdict == "not reproduced"
    noisy = a + rng.normal(0, 0.2, 20)
    assert paired(noisy, b).verdict == "inconclusive"


def test_the_interval_is_the_sign_tests_on_the_log_ratios():
    """Oracle: the interval is scipy's quantile_test interval of the median of log(a/b), exponentiated, the ratio the
    median task's; on 10 tasks it is the 2nd and 9th smallest (binomial tables: P(B(10, 1/2) <= 1) = 11 / 1024)."""
    from scipy import stats

    rng = np.random.default_rng(1)
    b = rng.uniform(0.5, 1.5, 10)
    a = b * np.exp(rng.normal(-0.3, 0.2, 10))
    logs = np.sort(np.log(a / b))
    found = stats.quantile_test(logs, q=0, p=0.5).confidence_interval(0.95)
    p = paired(a, b)
    assert p.ratio == pytest.approx(np.exp(np.median(logs)))
    assert p.ratio_interval == pytest.approx((np.exp(found.low), np.exp(found.high)))
    assert p.ratio_interval == pytest.approx((np.exp(logs[1]), np.exp(logs[8])))
    assert p.verdict == ("reproduced" if logs[8] < 0 else "not reproduced" if logs[1] > 0 else "inconclusive")
    assert intervals.order_statistic(10) == 2 and intervals.order_statistic(6) == 1
    assert intervals.order_statistic(5) == 0 and intervals.MIN_TASKS == 6


def test_crops_of_one_photo_count_as_one_task():
    """clusters: the tasks of a group are averaged first, n counts the groups."""
    a, b = np.array([1.0, 3.0, 2.0, 2.0, 1.0, 1.0]), np.array([2.0, 2.0, 4.0, 4.0, 2.0, 2.0])
    p = paired(a, b, clusters=["x", "x", "y", "y", "z", "z"])
    assert p.tasks == 3 and p.log_ratios == pytest.approx([0.0, np.log(0.5), np.log(0.5)])
    assert p.verdict == "too few tasks"  # 3 photos: below the smallest n that decides
    assert paired(a, b).verdict == "inconclusive"  # as 6 independent tasks it would decide, were they
    with pytest.raises(ValueError, match="one label per task"):
        paired(a, b, clusters=["x"])


def test_diverged_runs_count_against_whoever_diverged():
    a, b = np.array([0.1, 0.2, 0.3, 0.2, 0.25, 0.1]), np.array([0.2, 0.3, math.inf, 0.3, 0.3, 0.2])
    assert paired(a, b).verdict == "reproduced"  # b diverged on one task and is worse on the others
    assert paired(b, a).verdict == "not reproduced"
    both = np.array([0.1, math.inf, 0.2, 0.2, 0.2, 0.1, 0.1])
    p = paired(both, np.array([0.2, math.inf, 0.4, 0.42, 0.38, 0.2, 0.2]))  # both diverged on task 1: a tie there
    assert p.log_ratios[1] == 0 and p.verdict == "inconclusive"  # the tie is not on a's side: 6 of 7 are not enough
    with pytest.raises(ValueError, match="positive"):
        paired(np.array([0.0, 1.0]), np.array([1.0, 1.0]))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same tasks"):
        paired(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="at least 2 tasks"):
        paired(np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="unknown"):
        combined(["yes"])
    with pytest.raises(ValueError, match="no verdicts"):
        combined([])


def test_combined_needs_every_comparison():
    assert combined(["reproduced"] * 3) == "reproduced"
    assert combined(["reproduced", "inconclusive"]) == "inconclusive"
    assert combined(["reproduced", "inconclusive", "not reproduced"]) == "not reproduced"
    assert combined(["reproduced", "too few tasks", "inconclusive"]) == "too few tasks"
    assert combined(["too few tasks", "not reproduced"]) == "not reproduced"


def test_lower_than_decides_on_the_closest_baseline_and_every_seed():
    finals = np.array([0.10, 0.20, 0.30, 0.40, 0.5, 0.6])
    seed0 = {"LSTM": result("LSTM", finals), "SGD": result("SGD", finals + 0.4), "Adam": result("Adam", finals + 0.01)}
    one = lower_than(seed0)
    assert one["verdict"] == "reproduced" and one["seeds"] == 1 and one["n"] == 6 and one["method"]
    median = np.exp(np.median(np.log(finals / (finals + 0.01))))
    assert "LSTM/Adam" in one["metric"] and one["ratio"] == pytest.approx(median)
    assert len(one["comparisons"]) == 2 and one["interval"][1] < 1 and len(one["log_ratios"]) == 6
    seed1 = {**seed0, "LSTM": result("LSTM", finals + 0.02)}  # the second optimizer loses to Adam
    two = lower_than([seed0, seed1])
    assert two["verdict"] == "not reproduced" and two["seeds"] == 2
    assert two["ours"].startswith("LSTM/SGD 0.") and "LSTM/Adam " in two["ours"] and two["ours"].count("LSTM/") == 2
    assert "all seeds within [" in two["ours"] and two["ours"].endswith("(2 optimizers)")
    assert lower_than(seed0, others=["SGD"])["metric"].endswith("LSTM/SGD")
    with pytest.raises(ValueError, match="not among"):
        lower_than(seed0, learned="L2L")
    with pytest.raises(ValueError, match=r"others=\['NAG'\] are not among"):
        lower_than(seed0, others=["SGD", "NAG"])
    # the interval shown is the deciding comparison's: an inconclusive one beats a closer-in-ratio clear win
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    close_but_clear = {"LSTM": result("LSTM", base * 0.99), "A": result("A", base)}
    close_but_clear["B"] = result("B", [0.5, 3.0, 3.05, 4.0, 4.0, 7.0])
    fields = lower_than(close_but_clear)
    assert fields["verdict"] == "inconclusive" and fields["metric"].endswith("LSTM/B")


def test_a_claim_carries_its_verdict_interval_and_sizes():
    row = l2l.claim("LSTM beats Adam", "numbers", verdict="inconclusive", interval=[0.9, 1.1], metric="m", tasks=20)
    assert row["verdict"] == "inconclusive" and row["reproduced"] is None and row["interval"] == [0.9, 1.1]
    assert row["n"] == 20 and all(key in row for key in results.CLAIM_FIELDS)
    assert l2l.claim("x", "y", True)["verdict"] == "reproduced"
    assert l2l.claim("x", "y", False)["verdict"] == "not reproduced"
    assert l2l.claim("x", "y", None)["verdict"] == "not tested"
    both = {"LSTM": result("LSTM", [0.1, 0.2, 0.3, 0.2, 0.1, 0.1]), "Adam": result("Adam", [1, 2, 2, 3, 1, 1])}
    paired_row = l2l.claim("x", **lower_than(both))
    assert (
        paired_row["verdict"] == "reproduced" and paired_row["reproduced"] is True and "comparisons" not in paired_row
    )
    with pytest.raises(ValueError, match="verdict"):
        l2l.claim("x", "y", verdict="maybe")
    with pytest.raises(ValueError, match="both"):
        l2l.claim("x", "y", True, verdict="reproduced")


def test_wilson_interval_matches_a_textbook_value():
    """Oracle: 8 of 10 gives [0.490, 0.943] (Wilson 1927; e.g. Newcombe 1998, Table I, method 3)."""
    low, high = intervals.wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert intervals.wilson(0, 5)[0] == 0.0 and intervals.wilson(5, 5)[1] == 1.0
    with pytest.raises(ValueError, match="successes"):
        intervals.wilson(3, 2)


def test_most_tasks_needs_the_interval_above_one_half():
    lstm = result("LSTM", [0.1] * 54 + [0.3] * 46)
    best = result("Adam", [0.2] * 100)
    fields = verdicts.win_fraction(lstm, best)
    assert fields["ratio"] == 0.54 and fields["verdict"] == "inconclusive"  # 54% of 100: [0.44, 0.64]
    assert verdicts.win_fraction(result("LSTM", [0.1] * 70 + [0.3] * 30), best)["verdict"] == "reproduced"
    assert verdicts.win_fraction(result("LSTM", [0.3] * 70 + [0.1] * 30), best)["verdict"] == "not reproduced"


def test_by_seed_splits_one_comparison_per_optimizer():
    """Several meta-trained optimizers in one comparison become one comparison each, baselines shared."""
    res = {"L s0": result("L s0", [1.0, 2.0]), "L s1": result("L s1", [3.0, 4.0]), "Adam": result("Adam", [5.0, 6.0])}
    runs = l2l.by_seed(res, ["L s0", "L s1"], "L")
    assert [sorted(r) for r in runs] == [["Adam", "L"], ["Adam", "L"]]
    assert runs[1]["L"] is res["L s1"] and runs[0]["Adam"] is runs[1]["Adam"] is res["Adam"]
    with pytest.raises(ValueError, match="not among"):
        l2l.by_seed(res, ["L s2"])
    with pytest.raises(ValueError, match="already a result name"):
        l2l.by_seed(res, ["L s0"], "Adam")


def test_by_seed_groups_pairs_seed_k_of_every_kind():
    """Two kinds of meta-trained optimizer, two seeds each: comparison k holds seed k of both, baselines shared."""
    res = {n: result(n, [1.0, 2.0]) for n in ("G s0", "G s1", "L s0", "L s1", "Adam")}
    runs = l2l.by_seed_groups(res, {"G": ["G s0", "G s1"], "L": ["L s0", "L s1"]})
    assert [sorted(r) for r in runs] == [["Adam", "G", "L"]] * 2
    assert runs[1]["G"] is res["G s1"] and runs[1]["L"] is res["L s1"] and runs[0]["Adam"] is res["Adam"]
    assert lower_than(runs, "G", ["L"])["seeds"] == 2
    with pytest.raises(ValueError, match="same, non-zero number"):
        l2l.by_seed_groups(res, {"G": ["G s0", "G s1"], "L": ["L s0"]})
    with pytest.raises(ValueError, match="not among"):
        l2l.by_seed_groups(res, {"G": ["G s2"]})
    with pytest.raises(ValueError, match="already result names"):
        l2l.by_seed_groups(res, {"Adam": ["G s0"]})


def test_most_tasks_over_seeds_needs_every_seed():
    """One seed winning on 19 of 20 tasks and one on 10 of 20: inconclusive overall, the weaker seed shown."""
    base = result("B", [1.0] * 20)
    strong = result("L", [0.5] * 19 + [2.0])
    weak = result("L", [0.5] * 10 + [2.0] * 10)
    both = l2l.most_tasks([{"L": strong, "B": base}, {"L": weak, "B": base}], "L", "B")
    assert both["verdict"] == "inconclusive" and both["seeds"] == 2 and both["ratio"] == 0.5
    assert l2l.most_tasks([{"L": strong, "B": base}], "L", "B")["verdict"] == "reproduced"


def test_all_of_needs_every_part_and_shows_the_deciding_one():
    """Claims that must hold at several scales: the verdict is combined, the worst part decides the interval."""
    rng = np.random.default_rng(0)
    b = result("b", 1.0 + rng.random(30))
    clearly = lower_than({"a": result("a", b.losses[:, -1].numpy() * 0.5), "b": b}, "a", ["b"])
    close = lower_than({"a": result("a", b.losses[:, -1].numpy() + rng.normal(0, 0.3, 30)), "b": b}, "a", ["b"])
    out = l2l.all_of([clearly, close], ["s=0.1", "s=10"])
    assert clearly["verdict"] == "reproduced" and out["verdict"] == close["verdict"] != "reproduced"
    assert out["interval"] == close["interval"] and out["metric"].endswith("at s=10")
    assert out["ours"].startswith("s=0.1: 0.5 ") and "s=10:" in out["ours"]
    assert l2l.all_of([clearly, clearly], ["x", "y"])["verdict"] == "reproduced"
    with pytest.raises(ValueError, match="one label per part"):
        l2l.all_of([clearly], ["x", "y"])
