"""Shared test setup: never download MNIST during tests, and never open the locked test split (development and
tests evaluate on ``dev``; ``l2l_helpers.optimizees.base.check_unlocked`` raises when anything asks for ``test``).
The notebooks that nbval runs inherit both settings through the environment."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ["L2L_OFFLINE"] = "1"
os.environ["L2L_LOCK_TEST"] = "1"


def pytest_collection_modifyitems(config, items):
    """Longest first: ``make test`` runs on pytest-xdist workers that take a module (or a notebook) at a time, in
    this order, so the modules with slow tests start first and the quick ones fill in around them. The order is
    stable otherwise: a module's tests and a notebook's cells keep theirs."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow") is not None}

    def rank(item: pytest.Item) -> int:
        return 0 if item.path in slow_modules else 1 if item.path.suffix == ".ipynb" else 2

    items.sort(key=rank)


@pytest.fixture(scope="session")
def load_benchmark():
    """Import a script of ``benchmarks/`` by name as a module (they are scripts, not a package)."""
    return _load_benchmark


def _load_benchmark(name: str):
    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    if str(path.parent) not in sys.path:  # the scripts import each other (the reference epoch) by name
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
