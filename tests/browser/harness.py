"""A real JupyterLab and Debian's chromium for browser tests and benchmarks.

``start_lab`` runs ``jupyter lab`` from this Python with private config, data, runtime,
settings and workspace folders, on a free port with a token; user settings turn autosave,
news and update checks off and render every notebook cell (no windowing), so the DOM
holds all outputs. ``NotebookPage`` drives one notebook through ``window.jupyterapp``.
Nothing here downloads anything: the browser is ``/usr/bin/chromium``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
#: JupyterLab user settings for tests: no autosave, no news or update popup, no cell windowing.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
REPO = Path(__file__).resolve().parents[2]


def browser_missing() -> str | None:
    """Why browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: install Debian's chromium (make system)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing: pip install -e '.[dev]'"
    if shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None:
        return "JupyterLab is not installed in this environment: pip install -e '.[dev]'"
    return None


def launch_browser(playwright: Any) -> Any:
    """Debian's chromium, headless, with the flags known to work here."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab; ``root`` is the folder it serves notebooks from."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def delete_sessions(self) -> None:
        """Shut down every kernel session (and the runs inside them)."""
        for session in self.api("/api/sessions"):
            with contextlib.suppress(OSError):
                self.api(f"/api/sessions/{session['id']}", method="DELETE")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.delete_sessions()
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_lab(base: Path, timeout: float = 240.0) -> LabServer:
    """Start JupyterLab with everything private under ``base``; wait until it answers."""
    dirs = {name: base / name for name in ("config", "data", "runtime", "workspaces", "settings", "notebooks")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    for plugin, values in LAB_SETTINGS.items():
        path = dirs["settings"] / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    port, token = free_port(), secrets.token_hex(16)
    env = os.environ | {
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "HF_HUB_OFFLINE": "1",
        "PYANNOTE_METRICS_ENABLED": "0",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = base / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        "--LabApp.expose_app_in_browser=True",
        f"--ServerApp.root_dir={dirs['notebooks']}",
        "--ServerApp.port_retries=0",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=dirs["notebooks"])
    server = LabServer(f"http://127.0.0.1:{port}", token, dirs["notebooks"], process, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            msg = f"JupyterLab exited with status {process.returncode}:\n{server.log()}"
            raise RuntimeError(msg)
        try:
            server.api("/api/status")
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                msg = f"JupyterLab did not answer within {timeout} s:\n{server.log()}"
                raise TimeoutError(msg) from None
            time.sleep(0.5)


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells, for the Python 3 kernel of this environment."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, path)
    return path


_KERNEL_IDLE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && !!panel.content && panel.content.widgets.length > 0;
}"""

_RUN_CELL = """(index) => {
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.activeCellIndex = index;
  panel.content.deselectAll();
  window.jupyterapp.commands.execute('notebook:run-cell');  // wait on the DOM, not on this promise
}"""


class NotebookPage:
    """One notebook open in JupyterLab in a chromium page."""

    def __init__(self, page: Any, server: LabServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name

    def open(self, timeout: float = 180.0) -> NotebookPage:
        self.page.goto(self.server.notebook_url(self.name))
        self.page.wait_for_function(_KERNEL_IDLE, timeout=timeout * 1000, polling=250)
        return self

    def cell(self, index: int) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def run_cell(self, index: int) -> None:
        self.page.evaluate(_RUN_CELL, index)

    def output(self, index: int) -> Any:
        return self.cell(index).locator(".jp-OutputArea")

    def wait_for_output(self, index: int, text: str, timeout: float = 120.0) -> str:
        """Wait until cell ``index`` prints ``text``; return the whole output text."""
        area = self.output(index)
        area.get_by_text(text, exact=False).first.wait_for(timeout=timeout * 1000)
        return area.inner_text()

    def save(self) -> None:
        self.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        self.page.wait_for_function(
            "() => { const p = window.jupyterapp.shell.currentWidget; return p && !p.context.model.dirty; }",
            timeout=30_000,
        )


def wait_for_records(log: Path, condition: Any, count: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Wait until ``count`` lines of the override log ``log`` match ``condition``; return them."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if log.exists():
            found = [r for r in map(json.loads, log.read_text(encoding="utf-8").splitlines()) if condition(r)]
            if len(found) >= count:
                return found
        time.sleep(0.05)
    msg = f"{len(found)} of {count} expected override records in {log}"
    raise AssertionError(msg)
