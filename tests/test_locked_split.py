"""The locked test split: nothing in development, meta-training or the test suite evaluates its tasks."""

from __future__ import annotations

import os

import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.optimizees.base import HELD_OUT_SPLITS, LOCK_ENV, SPLIT_OFFSETS, LockedSplitError, task_seeds


def test_the_suite_runs_with_the_test_split_locked():
    """conftest locks the split for every test and for the notebooks nbval runs (they inherit the environment): any
    test or SMOKE notebook that asked for a locked task would fail with LockedSplitError."""
    assert os.environ.get(LOCK_ENV) == "1"
    with pytest.raises(LockedSplitError, match="split='dev'"):
        l2l.QuadraticProblem().tasks("test", [0])
    with pytest.raises(LockedSplitError):
        task_seeds("test", range(3))
    assert len(l2l.QuadraticProblem().tasks("dev", range(3)).seeds) == 3


def test_dev_is_the_range_development_evaluated_and_test_a_new_one():
    """dev keeps the seeds every development evaluation used (from 2e9); the locked range starts past it, and both
    draw the held-out data."""
    assert SPLIT_OFFSETS["dev"] == 2_000_000_000 and SPLIT_OFFSETS["test"] == 3_000_000_000
    assert task_seeds("dev", [0, 5]) == [2_000_000_000, 2_000_000_005]
    assert set(HELD_OUT_SPLITS) == {"dev", "test"}


def test_the_locked_split_opens_when_unlocked(monkeypatch):
    """Outside the suite (a notebook's full run) the locked split is a split like the others."""
    monkeypatch.setenv(LOCK_ENV, "0")
    assert task_seeds("test", [1]) == [3_000_000_001]


def test_meta_training_draws_only_train_and_val_tasks():
    """Meta-training (with validation and selection) and baseline tuning ask only for train and val tasks."""
    asked = []

    class Spy(l2l.QuadraticProblem):
        def tasks(self, split, indices, device="cpu"):
            asked.append(split)
            return super().tasks(split, indices, device)

    problem = Spy(dim=3)
    torch.manual_seed(0)
    net = l2l.CoordinatewiseLSTM(l2l.OptimizerConfig(hidden_size=4))
    config = l2l.MetaTrainConfig(epochs=2, steps=4, unroll=2, tasks_per_epoch=2, val_every=1, val_tasks=2)
    l2l.meta_train(net, problem, config, progress=False)
    l2l.tune_baselines(problem, ("Adam",), grid=[0.01, 0.1], n_tasks=2, steps=3, progress=False)
    assert set(asked) == {"train", "val"}
