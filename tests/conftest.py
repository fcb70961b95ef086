"""Shared test setup: never download MNIST during tests."""

from __future__ import annotations

import os

os.environ["L2L_OFFLINE"] = "1"
