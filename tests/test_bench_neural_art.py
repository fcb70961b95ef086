"""benchmarks/bench_neural_art.py compares like with like: its plain Gram is the textbook formula, and it puts the
package's back when it is done."""

from __future__ import annotations

import sys

import torch

from l2l_helpers.optimizees import neural_art


def test_plain_gram_is_the_formula_and_the_run_restores_the_package(load_benchmark, monkeypatch, capsys):
    bench = load_benchmark("bench_neural_art")
    feat = torch.randn(2, 3, 4, 5)
    flat = feat.reshape(2, 3, 20)
    torch.testing.assert_close(bench.plain_gram(feat), torch.einsum("bcp,bdp->bcd", flat, flat) / 60)
    package = neural_art.gram
    args = ["--sizes", "16", "--images", "1", "--rounds", "1", "--repeats", "1", "--no-reference"]
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    bench.main()
    assert neural_art.gram is package
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith("| 16x16 |")]
    assert len(rows) == 1 and rows[0].endswith("|") and rows[0].count("|") == len(bench.WAYS) + 4, rows
    assert any("hand-written" in line for line in out)
