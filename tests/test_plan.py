"""l2l_helpers.notebook.plan: the evaluation plan's tables, and claims checked against them."""

from __future__ import annotations

import pytest

import l2l_helpers as l2l
from l2l_helpers.notebook.plan import COLUMNS, parse_plan, plan_file, planned
from l2l_helpers.notebook.power import claim_power
from l2l_helpers.notebook.results import fill_plan

PLAN = """# Plan

Prose is ignored.

## 06_mnist

| id | claim | statistic | n | seeds | baselines tuned for | rule |
|---|---|---|---|---|---|---|
| beats_100 | LSTM beats the baselines | final loss | 20 | 3 | final loss, 100 steps | every interval below 1 |
| inputs | KS | KS distance | - | 1 | none | 3x the floor |

## 07_architectures

| id | claim | statistic | n | seeds | baselines tuned for | rule |
|---|---|---|---|---|---|---|
| beats_wider | wider | final loss | 40 | 3 | final loss | every interval below 1 |
"""


def test_parse_plan_reads_each_notebooks_table():
    plan = parse_plan(PLAN)
    assert list(plan) == ["06_mnist", "07_architectures"]
    assert plan["06_mnist"]["beats_100"]["n"] == 20 and plan["06_mnist"]["beats_100"]["seeds"] == 3
    assert plan["06_mnist"]["inputs"]["n"] is None and plan["07_architectures"]["beats_wider"]["rule"]
    with pytest.raises(ValueError, match="header"):
        parse_plan("## 06_mnist\n\n| id | claim |\n|---|---|\n")
    with pytest.raises(ValueError, match="twice"):
        parse_plan(PLAN + "| beats_wider | again | x | 4 | 3 | x | x |\n")
    with pytest.raises(ValueError, match="cells"):
        parse_plan(PLAN + "| short | row |\n")


def test_the_shipped_plan_covers_every_claim_of_the_notebooks():
    """Every claim id a notebook records is in notebooks/PLAN.md (nbval's SMOKE runs fail on an unplanned id, through
    fill_plan); here: the plan parses, has the columns, and gives every comparison claim its n and seeds."""
    assert plan_file() is not None, "notebooks/PLAN.md is missing"
    plan = parse_plan(plan_file().read_text())
    assert {"01_problem_framing", "05_quadratics", "11_beyond_the_paper"} <= set(plan)
    for notebook, rows in plan.items():
        for claim_id, row in rows.items():
            assert set(row) == set(COLUMNS) and row["seeds"], (notebook, claim_id)


def test_fill_plan_records_split_and_planned_n_and_refuses_an_unplanned_claim():
    rows = planned("05_quadratics")
    first = next(iter(rows))
    claim = l2l.claim("x", "y", verdict="reproduced", interval=[0.5, 0.9], n=20, seeds=3, id=first)
    filled = fill_plan("05_quadratics", [claim], "dev")[0]
    assert filled["split"] == "dev" and filled["planned_n"] == rows[first]["n"]
    few = l2l.claim("x", "y", verdict="reproduced", interval=[0.5, 0.9], n=4, seeds=3, id=first)
    withheld = fill_plan("05_quadratics", [few], "dev")[0]
    assert withheld["verdict"] == "not tested" and "verdict withheld, reproduced at this n" in withheld["ours"]
    with pytest.raises(ValueError, match=r"not in notebooks/PLAN\.md"):
        fill_plan("05_quadratics", [l2l.claim("x", "y", True, id="no_such_claim")], "dev")


def test_claim_power_from_a_dev_runs_log_ratios():
    found = claim_power({"log_ratios": [-0.2, -0.3, -0.1, -0.25, -0.15, float("inf")]})
    assert found["n"] == 6 and found["median_log_ratio"] == pytest.approx(-0.175)
    assert found["share"] == pytest.approx(5.5 / 7) and found["n_for_power"] >= 6
    assert claim_power({"log_ratios": [0.1]}) is None and claim_power({}) is None
