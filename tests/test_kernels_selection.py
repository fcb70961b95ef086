"""Which LSTM step runs (l2l_helpers.kernels.selection): measured once per CPU and thread count, cached with the
build, forced by L2L_NATIVE, and the fused step whenever the native one cannot be built or run here."""

from __future__ import annotations

import json
import types

import pytest
import torch

from l2l_helpers import settings
from l2l_helpers.kernels import native, selection
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM

AVX2_ONLY = "fpu sse sse2 avx fma avx2"
NO_AVX2 = "fpu sse sse2 sse4_2 avx"


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No module loaded or step selected yet in this process; the build's folder is a temporary one."""
    monkeypatch.setattr(native, "_modules", {})
    monkeypatch.setattr(native, "_errors", {})
    monkeypatch.setattr(selection, "_selections", {})
    monkeypatch.setattr(native, "build_dir", lambda name: tmp_path)
    monkeypatch.delenv("L2L_NATIVE", raising=False)
    monkeypatch.delenv("L2L_NATIVE_MARCH", raising=False)
    return tmp_path


def built(monkeypatch, lanes: int = 8) -> None:
    """Pretend the current target built (a module with ``lanes``), without compiling anything."""
    monkeypatch.setattr(native, "_build", lambda name, verbose: types.SimpleNamespace(lanes=lanes))


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"native": 6.0, "fused": 12.0}, "native"),
        ({"native": 29.0, "fused": 12.5}, "fused"),
        ({"native": 5.0, "fused": 5.0}, "fused"),
    ],
)
def test_pick_takes_the_faster_step(times, expected):
    """The faster of the two measured steps; the fused one on a tie (no reason to prefer the native one)."""
    assert selection.pick(times) == expected


@pytest.mark.parametrize("native_ms", [4.0, 40.0])
def test_auto_measures_once_and_caches_the_choice_with_the_build(fresh, monkeypatch, capsys, native_ms):
    """The first process measures and writes selection.json; the next one reads it and does not measure."""
    built(monkeypatch)
    calls = []
    monkeypatch.setattr(selection, "measure", lambda: calls.append(1) or {"native": native_ms, "fused": 10.0})
    chosen = selection.selection()
    assert chosen.step == ("native" if native_ms < 10 else "fused") and calls == [1]
    assert chosen.times_ms == {"native": native_ms, "fused": 10.0}
    cache = json.loads((fresh / "selection.json").read_text())
    (key,) = cache
    assert key.endswith(f"-{torch.get_num_threads()}threads") and cache[key]["times_ms"]["native"] == native_ms
    assert selection.selection() is chosen  # the same process: decided once
    assert capsys.readouterr().err.count("LSTM step:") == 1  # and said once
    monkeypatch.setattr(selection, "_selections", {})  # a new process
    monkeypatch.setattr(selection, "measure", lambda: pytest.fail("measured again although the choice is cached"))
    assert selection.selection().step == chosen.step


def test_the_cache_is_keyed_by_cpu_and_threads(fresh, monkeypatch):
    """Another CPU (flags) or another thread count is measured anew; a corrupt cache file is re-measured."""
    built(monkeypatch)
    monkeypatch.setattr(selection, "measure", lambda: {"native": 1.0, "fused": 2.0})
    selection.selection()
    monkeypatch.setattr(selection, "_selections", {})
    monkeypatch.setattr(native, "cpu_flags", lambda: AVX2_ONLY)
    monkeypatch.setattr(selection, "measure", lambda: {"native": 3.0, "fused": 2.0})
    assert selection.selection().step == "fused"
    assert len(json.loads((fresh / "selection.json").read_text())) == 2
    (fresh / "selection.json").write_text("{not json")
    monkeypatch.setattr(selection, "_selections", {})
    assert selection.selection().step == "fused"  # measured again, and the file is whole again
    assert len(json.loads((fresh / "selection.json").read_text())) == 1


def test_the_environment_forces_a_step(fresh, monkeypatch):
    """L2L_NATIVE=1 runs the native step and L2L_NATIVE=0 the fused one, without measuring; other values are errors."""
    built(monkeypatch, lanes=16)
    monkeypatch.setattr(selection, "measure", lambda: pytest.fail("a forced step is not measured"))
    monkeypatch.setenv("L2L_NATIVE", "1")
    assert selection.selection().step == "native" and "L2L_NATIVE=1" in selection.selection().reason
    monkeypatch.setenv("L2L_NATIVE", "off")
    assert selection.selection().step == "fused" and settings.native_mode() == "off"
    monkeypatch.setenv("L2L_NATIVE", "fast")
    with pytest.raises(ValueError, match=r"L2L_NATIVE='fast'.*auto"):
        selection.selection()
    monkeypatch.setenv("L2L_NATIVE", "1")
    monkeypatch.setenv("L2L_NATIVE_MARCH", "pentium")
    with pytest.raises(ValueError, match=r"L2L_NATIVE_MARCH='pentium'.*haswell"):
        selection.selection()


def test_a_cpu_without_the_instructions_gets_the_fused_step(fresh, monkeypatch):
    """An AVX2 build is never run on a CPU without AVX2 (it would die of an illegal instruction): it is not
    even compiled, the warning says what is missing, and the fused step runs."""
    monkeypatch.setattr(native, "cpu_flags", lambda: NO_AVX2)
    monkeypatch.setenv("L2L_NATIVE_MARCH", "haswell")
    assert native.missing_instructions("haswell") == ["avx2", "fma"]
    with pytest.warns(RuntimeWarning, match="lacks avx2, fma"):
        chosen = selection.selection()
    assert chosen.step == "fused" and "avx2" in chosen.reason
    net = CoordinatewiseLSTM()
    _, state = net(torch.randn(30), net.init_state(30))
    assert type(state.grad_fn).__name__.startswith("FusedLSTMStep")
    assert native.missing_instructions("haswell", AVX2_ONLY) == []
    assert native.missing_instructions("native", NO_AVX2) == []


def test_vector_width_from_the_cpu_flags():
    assert native.vector_bits("sse avx avx2 avx512f") == 512
    assert native.vector_bits(AVX2_ONLY) == 256
    assert native.vector_bits("neon asimd") == 128


def test_the_build_is_named_by_content_not_by_path(monkeypatch, tmp_path):
    """A copy of the source elsewhere (another checkout, an installed package) shares the build; a changed
    source, another target or another CPU (for -march=native) gets its own."""
    here, text = native.build_name("native"), native.SOURCE.read_bytes()
    copy = tmp_path / "elsewhere" / "lstm_step.cpp"
    copy.parent.mkdir()
    copy.write_bytes(text)
    monkeypatch.setattr(native, "SOURCE", copy)
    assert native.build_name("native") == here
    assert native.build_name("haswell") != here
    copy.write_bytes(text + b"\n// changed\n")
    assert native.build_name("native") != here
    copy.write_bytes(text)
    haswell = native.build_name("haswell")
    monkeypatch.setattr(native, "cpu_flags", lambda: AVX2_ONLY)
    assert native.build_name("native") != here  # -march=native: this CPU's binary
    assert native.build_name("haswell") == haswell  # a fixed target: the same binary on any CPU


def test_measuring_leaves_the_global_random_state_alone():
    """The first LSTM step on a new machine measures both steps; a notebook's random draws stay the same."""
    if native.load() is None:
        pytest.skip("no native build here")
    before = torch.get_rng_state()
    selection.measure(n_coords=256, steps=1, repeats=1)
    assert torch.equal(torch.get_rng_state(), before)
