"""End to end, as a reader uses the companion: JupyterLab in a real browser (Chromium driven by Playwright).

The JupyterLab server starts the way ``make lab`` starts it (:func:`l2l_helpers.notebook.lab.lab_command`), on
127.0.0.1 with a random token and a free port, serving temporary copies of notebooks 01 and 02. The test
checks that the server's default URL opens notebook 01 at its title, then runs all cells of notebook 02
from the Run menu, checks that the plotly figures render, moves a slider of the meta-training panel with
the keyboard and checks that the panel says it is busy, trains again (live plot) and redraws its figure.
Screenshots and the server's log go to ``build/browser-artifacts/``. Skipped, with the reason, where
Chromium (Debian: ``apt-get install chromium``) or the ``playwright`` package is missing; ``.ci/run``
installs both. Never runs ``playwright install``: it uses the system's Chromium.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from helpers import CHROMIUM_ARGS

from l2l_helpers.notebook import lab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "02_coordinatewise_lstm.ipynb"
FIRST = lab.NOTEBOOK_DIR / lab.FIRST_NOTEBOOK  # the notebook make lab opens
ARTIFACTS = ROOT / "build" / "browser-artifacts"
BUDGET_S = 170  # the whole test, server start to shutdown; each wait below gets what is left of it
#: JupyterLab user settings for a deterministic page: every cell in the DOM, no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def chromium_path() -> str | None:
    """The system's Chromium, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notebook_copy(folder: Path) -> Path:
    """Notebook 02 with DEVICE = "cpu" in its parameters cell (at full size it runs in about 10 s)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert 'DEVICE = "auto"' in params.source and "INTERACTIVE = True" in params.source
    params.source = params.source.replace('DEVICE = "auto"', 'DEVICE = "cpu"')
    path = folder / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def first_notebook_copy(folder: Path) -> str:
    """Notebook 01, copied unchanged; returns its title (the text of its first heading)."""
    shutil.copy(FIRST, folder / FIRST.name)
    nb = nbformat.read(FIRST, as_version=4)
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()]
    title = next((line[2:].strip() for line in headings if line.startswith("# ")), None)
    assert title, f"{FIRST.name} has no title heading"
    return title


def api(base: str, token: str, path: str, method: str = "GET") -> object:
    """One call of the Jupyter server's REST API; the JSON answer (None when empty)."""
    request = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def start_lab(tmp: Path, token: str) -> tuple[subprocess.Popen, str, Path]:
    """JupyterLab as ``make lab`` starts it, on 127.0.0.1 serving ``tmp/lab``, its settings, runtime and results
    under ``tmp``."""
    for name, values in LAB_SETTINGS.items():
        target = tmp / "settings" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port = free_port()
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "L2L_RESULTS_DIR": str(tmp / "results"),  # the notebook's record() stays out of the repository
        "L2L_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",  # the kernel shares a small machine
        "TQDM_DISABLE": "1",
    }
    log = tmp / "jupyter.log"
    command = lab.lab_command(tmp / "lab", port=port, token=token, open_browser=False)
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return server, f"http://127.0.0.1:{port}", log


def wait_for_server(server: subprocess.Popen, base: str, token: str, log: Path, timeout: float) -> None:
    """Poll /api/status until the server answers; fail with its log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with status {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            api(base, token, "/api/status")
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop_lab(server: subprocess.Popen, base: str, token: str) -> list:
    """Shut the kernels down through the API (they outlive the page), then stop the server by its PID.

    Returns the kernels still listed after the shutdown requests (none, normally).
    """
    left: list = []
    if server.poll() is None:
        try:
            for session in api(base, token, "/api/sessions") or []:
                api(base, token, f"/api/sessions/{session['id']}", "DELETE")
            for kernel in api(base, token, "/api/kernels") or []:
                api(base, token, f"/api/kernels/{kernel['id']}", "DELETE")
            left = api(base, token, "/api/kernels") or []
        except OSError:
            pass  # the server is going away anyway; terminating it below stops its kernels too
        server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)
    return left


@pytest.mark.slow  # 25-50 s: sent to a worker first in make test
def test_browser_panel_updates(tmp_path):
    """make lab's server opens notebook 01; run all cells of notebook 02: figures render, a slider move re-trains."""
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium; .ci/run does this)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[dev]')"
    )
    start = time.monotonic()

    def left_ms() -> float:
        """Milliseconds left of the test's budget, for Playwright's timeouts."""
        return max(1000.0, (BUDGET_S - (time.monotonic() - start)) * 1000)

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    (tmp_path / "lab").mkdir()
    name = notebook_copy(tmp_path / "lab").name
    first_title = first_notebook_copy(tmp_path / "lab")
    token = secrets.token_hex(16)
    server, base, log = start_lab(tmp_path, token)
    try:
        wait_for_server(server, base, token, log, timeout=60)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                # the server's default URL, where make lab's printed URL and its browser go: notebook 01, its title
                page.goto(f"{base}/?token={token}", timeout=left_ms())
                sync_api.expect(page).to_have_url(re.compile(re.escape(f"{base}/lab/tree/{FIRST.name}")))
                heading = page.locator(".jp-MarkdownCell h1", has_text=first_title).first
                sync_api.expect(heading).to_be_visible(timeout=left_ms())
                tab = page.locator(".lm-TabBar-tab.lm-mod-current", has_text=FIRST.name).first
                sync_api.expect(tab).to_be_visible(timeout=left_ms())  # the notebook in front is notebook 01
                page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=left_ms())  # its kernel
                page.screenshot(path=ARTIFACTS / "default-url-notebook-01.png")
                for session in api(base, token, "/api/sessions") or []:  # notebook 01's kernel is not needed below
                    api(base, token, f"/api/sessions/{session['id']}", "DELETE")

                # notebook 02 alone, in a workspace of its own (the default one would reopen notebook 01 in front)
                page.goto(f"{base}/lab/workspaces/notebook-02/tree/{name}?token={token}", timeout=left_ms())
                idle = page.locator(".jp-StatusBar-Widget", has_text="| Idle").first
                idle.wait_for(timeout=left_ms())  # the kernel has started
                page.get_by_role("menuitem", name="Run", exact=True).click(timeout=left_ms())
                page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click(timeout=left_ms())
                # the last code cell prints this: every cell ran without an error
                page.get_by_text("permutation equivariance: holds").wait_for(timeout=left_ms())
                panel = page.locator(".widget-vbox", has_text="Rebuild the optimizer and meta-train it").first
                title = panel.locator(".js-plotly-plot .gtitle", has_text="Held-out final loss")  # the final figure
                sync_api.expect(title).to_contain_text("2 x 20 LSTM", timeout=left_ms())
                plots = page.locator(".js-plotly-plot")
                page.screenshot(path=ARTIFACTS / "notebook-after-run-all.png")
                assert plots.count() >= 3, "the static figure and both panels' figures are drawn"
                for i in range(plots.count()):
                    assert plots.nth(i).locator(".main-svg").count() > 0, f"plotly figure {i} has no SVG"
                assert page.locator(".jupyter-widgets").count() > 0
                before = title.text_content()
                panel.screenshot(path=ARTIFACTS / "panel-before.png")

                handle = panel.locator(".widget-slider .noUi-handle").first  # LSTM layers: 2
                handle.focus()
                handle.press("ArrowRight")  # what a reader's keyboard does: layers 3
                sync_api.expect(panel.locator(".widget-readout").first).to_have_text("3", timeout=left_ms())
                # while it trains the panel draws the meta-loss live (every 5 epochs), then the final figure
                panel.get_by_text("Meta-training a 3 x 20 LSTM (live)").first.wait_for(timeout=left_ms())
                busy = panel.get_by_text("computing")
                sync_api.expect(busy).to_be_visible(timeout=left_ms())  # and says it is busy meanwhile
                panel.screenshot(path=ARTIFACTS / "panel-training-live.png")
                sync_api.expect(title).to_contain_text("3 x 20 LSTM, log_sign", timeout=left_ms())
                after = title.text_content() or ""
                assert after != before and after.startswith("3 x 20 LSTM, log_sign"), after
                sync_api.expect(busy).to_be_hidden(timeout=left_ms())
                panel.screenshot(path=ARTIFACTS / "panel-after.png")
                page.screenshot(path=ARTIFACTS / "notebook-after-slider.png")
            finally:
                browser.close()
    finally:
        kernels_left = stop_lab(server, base, token)
        shutil.copy(log, ARTIFACTS / "jupyter.log")
    assert kernels_left == [] and server.returncode is not None, "kernels and server are stopped"
    print(f"browser test: {time.monotonic() - start:.0f} s; screenshots in {ARTIFACTS}")
