"""Open the course: JupyterLab on ``notebooks/``, starting at notebook 01, with its URL printed once it answers.

``make lab`` runs ``python -m l2l_helpers.notebook.lab``; :func:`lab_command` builds the server's command line, which
the
browser test starts too.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from l2l_helpers import settings

NOTEBOOK_DIR = settings.PACKAGE_DIR.parent / "notebooks"
FIRST_NOTEBOOK = "01_problem_framing.ipynb"
DEFAULT_PORT = 8888
LOCAL_HOSTS = {"", "0.0.0.0", "::", "*"}  # listen on every interface: the URL to print is the loopback one


def is_root() -> bool:
    """True when this process runs as root (JupyterLab then needs ``--allow-root``)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def can_open_browser() -> bool:
    """False on a machine with no display and no ``BROWSER`` set (a server or container): no browser to open."""
    if os.environ.get("BROWSER"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def first_url(port: int, token: str, ip: str = "127.0.0.1", notebook: str = FIRST_NOTEBOOK) -> str:
    """The URL that opens ``notebook`` in the server on ``ip:port``, logged in by its token."""
    host = "127.0.0.1" if ip in LOCAL_HOSTS else ip
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/lab/tree/{notebook}?token={token}"


def lab_command(
    notebook_dir: str | Path = NOTEBOOK_DIR,
    port: int | None = None,
    token: str | None = None,
    open_browser: bool = True,
    ip: str = "127.0.0.1",
    notebook: str = FIRST_NOTEBOOK,
    allow_root: bool | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line of a JupyterLab server whose root is ``notebook_dir`` and whose default page is ``notebook``.

    ``port`` None lets JupyterLab pick (8888 or the next free one), otherwise exactly that port; ``token`` None
    lets it make one; ``allow_root`` None adds ``--allow-root`` only when running as root; ``extra`` goes last.
    """
    root = Path(notebook_dir)
    if not root.is_dir():
        raise ValueError(f"notebook_dir={str(root)!r} is not a folder: give the folder that holds the notebooks")
    if not (root / notebook).is_file():
        raise ValueError(f"{notebook!r} is not in {str(root)!r}: give the name of a notebook in that folder")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        raise ValueError(f"port={port!r} must be an integer in 1..65535 (or None to let JupyterLab pick)")
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root.resolve()}",
        f"--LabApp.default_url=/lab/tree/{notebook}",  # where / and the opened browser go (JupyterLab's own setting)
        f"--ServerApp.ip={ip}",
        "--ServerApp.answer_yes=True",  # one Ctrl-C stops the server, no y/n prompt
    ]
    if port is not None:
        command += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        command.append("--no-browser")
    if is_root() if allow_root is None else allow_root:
        command.append("--allow-root")
    return [*command, *extra]


def pick_port(ip: str = "127.0.0.1", first: int = DEFAULT_PORT, tries: int = 50) -> int:
    """The first port from ``first`` on that nothing listens on at ``ip`` (a free one the system gives otherwise)."""
    host = "127.0.0.1" if ip in LOCAL_HOSTS else ip
    for port in [*range(first, first + tries), 0]:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free TCP port on {host}: free one or pass --port")


def wait_until_up(server: subprocess.Popen, url: str, token: str, timeout: float = 120.0) -> bool:
    """Poll the server's ``/api/status`` until it answers (True); False if it exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(request, timeout=5):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of ``python -m l2l_helpers.notebook.lab``; what follows ``--`` goes to JupyterLab unchanged."""
    parser = argparse.ArgumentParser(
        prog="python -m l2l_helpers.notebook.lab",
        description="Open the course: JupyterLab on notebooks/, starting at notebook 01. Ctrl-C stops it.",
        epilog="Arguments after -- are passed to JupyterLab, e.g. -- --ServerApp.log_level=DEBUG",
    )
    parser.add_argument("--port", type=int, help=f"port to serve on (default: {DEFAULT_PORT} or the next free one)")
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    parser.add_argument("--token", help="login token (default: a new random one)")
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser (the default where there is no display and BROWSER is unset)",
    )
    parser.add_argument("--notebook-dir", type=Path, default=NOTEBOOK_DIR, help="folder to serve (default: notebooks/)")
    parser.add_argument(
        "--notebook", default=FIRST_NOTEBOOK, help=f"the notebook opened first (default: {FIRST_NOTEBOOK})"
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.extra = extra
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Start JupyterLab on the course, print the URL of notebook 01 once the server answers, serve until Ctrl-C."""
    args = parse_args(argv)
    token = args.token or secrets.token_hex(24)
    port = args.port or pick_port(args.ip)
    open_browser = not args.no_browser and can_open_browser()
    try:
        command = lab_command(args.notebook_dir, port, token, open_browser, args.ip, args.notebook, extra=args.extra)
    except ValueError as exc:
        print(f"l2l lab: {exc}", file=sys.stderr)
        return 2
    url = first_url(port, token, args.ip, args.notebook)
    server = subprocess.Popen(command)
    # SIGTERM stops the server too (finally below)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        if wait_until_up(server, url.split("/lab/", 1)[0], token):
            bar = "=" * min(100, len(url) + 7)
            where = "" if open_browser else " (no browser opened here: paste it into one)"
            print(f"\n{bar}\nThe course is open{where}:\n\n  Open {url}\n\nCtrl-C stops the server.\n{bar}\n")
            sys.stdout.flush()
        elif server.poll() is None:
            print(f"l2l lab: JupyterLab is slow to answer; once it does, open {url}", file=sys.stderr)
        return server.wait()
    except KeyboardInterrupt:
        return stop(server)
    finally:
        if server.poll() is None:
            stop(server)
        signal.signal(signal.SIGTERM, previous)


def stop(server: subprocess.Popen) -> int:
    """Stop JupyterLab as Ctrl-C does (its kernels shut down), by SIGTERM if it has not stopped 15 s later."""
    try:
        return server.wait(timeout=2)  # a terminal's Ctrl-C reached it too
    except subprocess.TimeoutExpired:
        server.send_signal(signal.SIGINT)
    try:
        return server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.terminate()
        return server.wait()


if __name__ == "__main__":
    sys.exit(main())
