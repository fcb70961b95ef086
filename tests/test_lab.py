"""l2l_helpers.notebook.lab (``make lab``): the JupyterLab command line, the URL it prints, and its start without a
server."""

from __future__ import annotations

import sys

import pytest

from l2l_helpers.notebook import lab


def option(command: list[str], name: str) -> str | None:
    """The value of ``--name=value`` in ``command`` (None if absent)."""
    values = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"{name}=")]
    assert len(values) <= 1, f"{name} given {len(values)} times"
    return values[0] if values else None


def test_lab_command_serves_the_notebooks_and_opens_notebook_01():
    """Root dir notebooks/, default page notebook 01, loopback only; JupyterLab picks port and token by default."""
    command = lab.lab_command(allow_root=False)
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    assert option(command, "--ServerApp.root_dir") == str(lab.NOTEBOOK_DIR)
    assert (lab.NOTEBOOK_DIR / lab.FIRST_NOTEBOOK).is_file() and lab.FIRST_NOTEBOOK == "01_problem_framing.ipynb"
    assert option(command, "--LabApp.default_url") == "/lab/tree/01_problem_framing.ipynb"
    assert option(command, "--ServerApp.ip") == "127.0.0.1"
    assert option(command, "--ServerApp.port") is None and option(command, "--IdentityProvider.token") is None
    assert "--no-browser" not in command and "--allow-root" not in command


def test_lab_command_options(tmp_path):
    """Port (exactly that one), token, no browser, root, another folder and notebook, extra arguments last."""
    (tmp_path / "02.ipynb").write_text("{}")
    command = lab.lab_command(
        tmp_path, port=8890, token="abc", open_browser=False, ip="0.0.0.0", notebook="02.ipynb", allow_root=True,
        extra=["--ServerApp.log_level=DEBUG"],
    )  # fmt: skip
    assert option(command, "--ServerApp.root_dir") == str(tmp_path.resolve())
    assert option(command, "--LabApp.default_url") == "/lab/tree/02.ipynb"
    assert option(command, "--ServerApp.port") == "8890" and option(command, "--ServerApp.port_retries") == "0"
    assert option(command, "--IdentityProvider.token") == "abc" and option(command, "--ServerApp.ip") == "0.0.0.0"
    assert "--no-browser" in command and "--allow-root" in command
    assert command[-1] == "--ServerApp.log_level=DEBUG"


@pytest.mark.parametrize("root", [True, False])
def test_allow_root_only_as_root(monkeypatch, root):
    """``--allow-root`` follows the user running it unless the caller decides."""
    monkeypatch.setattr(lab, "is_root", lambda: root)
    assert ("--allow-root" in lab.lab_command()) is root


def test_lab_command_rejects_bad_input(tmp_path):
    """A missing folder or notebook, or a port out of range, is a one-line error saying what to give."""
    with pytest.raises(ValueError, match="is not a folder"):
        lab.lab_command(tmp_path / "missing")
    with pytest.raises(ValueError, match="is not in"):
        lab.lab_command(tmp_path)
    for port in (0, 70000, True, "8888"):
        with pytest.raises(ValueError, match="port="):
            lab.lab_command(port=port)


def test_first_url_and_browser_detection(monkeypatch):
    """The printed URL opens notebook 01 with the token; no display and no BROWSER means no browser."""
    assert lab.first_url(8890, "abc") == "http://127.0.0.1:8890/lab/tree/01_problem_framing.ipynb?token=abc"
    assert lab.first_url(8890, "abc", ip="0.0.0.0").startswith("http://127.0.0.1:8890/")
    assert lab.first_url(8890, "abc", ip="::1").startswith("http://[::1]:8890/")
    for name in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(lab.sys, "platform", "linux")
    assert not lab.can_open_browser()
    monkeypatch.setenv("DISPLAY", ":0")
    assert lab.can_open_browser()
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("BROWSER", "w3m")
    assert lab.can_open_browser()


def test_pick_port_skips_a_taken_port():
    """The first free port from the one asked for."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert lab.pick_port(first=port, tries=2) != port


def test_main_starts_the_server_and_prints_the_url(monkeypatch, capsys):
    """``python -m l2l_helpers.notebook.lab``: the command it starts and the URL it prints once the server answers."""
    started = []

    class Server:
        """Stands in for the JupyterLab process."""

        returncode = 0

        def __init__(self, command: list[str]) -> None:
            started.append(command)

        def poll(self) -> int:
            return 0

        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(lab.subprocess, "Popen", Server)
    monkeypatch.setattr(lab, "wait_until_up", lambda server, url, token: url == "http://127.0.0.1:8891")
    monkeypatch.setattr(lab, "can_open_browser", lambda: False)
    assert lab.main(["--port", "8891", "--token", "t0k", "--", "--ServerApp.log_level=DEBUG"]) == 0
    (command,) = started
    assert option(command, "--ServerApp.port") == "8891" and option(command, "--IdentityProvider.token") == "t0k"
    assert "--no-browser" in command and command[-1] == "--ServerApp.log_level=DEBUG"
    out = capsys.readouterr().out
    assert "Open http://127.0.0.1:8891/lab/tree/01_problem_framing.ipynb?token=t0k" in out
    assert lab.main(["--notebook", "missing.ipynb"]) == 2 and "is not in" in capsys.readouterr().err
