"""l2l_helpers.settings: every path and environment switch resolved in one place, read when asked (not at import)."""

from __future__ import annotations

from pathlib import Path

import pytest

from l2l_helpers import settings


def test_a_checkout_reads_its_own_data_folder(monkeypatch):
    monkeypatch.delenv("L2L_DATA_DIR", raising=False)
    root = Path(__file__).resolve().parent.parent
    assert settings.CHECKOUT_DIR == root
    assert settings.assets_dir() == root / "data"
    assert settings.data_dir() == root / "data"
    assert (settings.styles_dir() / "starry_night.jpg").is_file()
    assert (settings.PRETRAINED_DIR / "mnist.pt").is_file()


def test_environment_variables_are_read_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("L2L_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("L2L_RESULTS_DIR", str(tmp_path / "r"))
    monkeypatch.setenv(settings.RETRAIN_DIR_ENV, str(tmp_path / "t"))
    monkeypatch.setenv("L2L_OFFLINE", "1")
    monkeypatch.setenv("L2L_PLOTLY_RENDERER", "png")
    assert settings.data_dir() == tmp_path / "d"
    assert settings.results_dir() == tmp_path / "r"
    assert settings.retrain_dir() == tmp_path / "t"
    assert settings.offline() and settings.plotly_renderer() == "png"
    for name in ("L2L_RESULTS_DIR", settings.RETRAIN_DIR_ENV, "L2L_OFFLINE", "L2L_PLOTLY_RENDERER"):
        monkeypatch.delenv(name)
    assert settings.results_dir().parts[-3:] == ("runs", "interactive", "results")
    assert settings.retrain_dir() is None and not settings.offline()
    assert settings.plotly_renderer() == "plotly_mimetype"


@pytest.mark.parametrize(
    ("value", "mode"), [("", "auto"), ("auto", "auto"), ("1", "on"), ("TRUE", "on"), ("0", "off"), ("off", "off")]
)
def test_native_switch(monkeypatch, value, mode):
    monkeypatch.setenv("L2L_NATIVE", value)
    assert settings.native_mode() == mode


def test_bad_switches_say_what_to_use(monkeypatch):
    monkeypatch.setenv("L2L_NATIVE", "fast")
    with pytest.raises(ValueError, match=r"auto.*1.*0"):
        settings.native_mode()
    monkeypatch.setenv("L2L_NATIVE_MARCH", "znver9")
    with pytest.raises(ValueError, match="native, haswell"):
        settings.native_target()
    monkeypatch.setenv("L2L_NATIVE_MARCH", "haswell")
    assert settings.native_target() == "haswell"


def test_the_build_targets_are_the_ones_the_native_step_knows():
    from l2l_helpers.kernels import native

    assert tuple(native.TARGETS) == settings.NATIVE_TARGETS
