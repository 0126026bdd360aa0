"""A real JupyterLab server on loopback and a headless Chromium driven by Playwright, for tests/browser.

The server serves a scratch folder holding copies of the chapters (never the committed files: nothing a test
runs can be saved over them) next to links to the repository's `minimrcnn/`, `results/` and `data/`, so the
chapters' first cells find the repository root as usual. Kernels inherit MINIMRCNN_SMOKE=1 and PYTHONPATH.

Chromium: Debian's `chromium` (or $CHROMIUM), launched by Playwright through `executable_path`; Playwright's
own browser download is never used. Missing browser or Playwright: the tests are skipped with the reason,
except under CI (CI=true), where they fail. Screenshots and the page's console go to $MINIMRCNN_BROWSER_OUT
(default runs/browser-test/) when a test fails; the folder is printed at the start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MINIMRCNN_BROWSER_OUT", REPO / "runs" / "browser-test"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(why: str) -> None:
    """No browser here: skip with the reason, or fail under CI, where `make test` must have installed it."""
    if IN_CI:
        pytest.fail(f"CI=true and {why}: `make test-browser` installs it (apt-get install chromium; pip)")
    pytest.skip(why)


def find_chromium() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name) if name else None
        if path:
            return path
    unavailable("no chromium on PATH (set CHROMIUM=/path/to/chromium)")
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(folder: Path) -> None:
    """JupyterLab settings for a test: every cell in the page (no virtual scrolling), no autosave, no news."""
    settings = {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    for plugin, values in settings.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


class Lab:
    """A running JupyterLab: `url(path)` opens a file of the served folder in the lab."""

    def __init__(self, root: Path, port: int, token: str, log: Path):
        self.root, self.port, self.token, self.log = root, port, token, log

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{path}?reset&token={self.token}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test: screenshots on failure go to {ARTIFACTS}", flush=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    (root / "chapters").mkdir(parents=True)
    for nb in (REPO / "chapters").glob("*.ipynb"):
        shutil.copy(nb, root / "chapters" / nb.name)
    for name in ("minimrcnn", "results", "data"):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    write_settings(tmp / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "MINIMRCNN_SMOKE": "1", "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "PYTHONPATH": os.pathsep.join(
               p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}  # fmt: skip
    log = tmp / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={tmp / 'settings'}",
           f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.terminals_enabled=False",
           "--allow-root"]  # fmt: skip  (CI runs as root)
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield Lab(root, port, token, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install -r requirements.txt)")
    executable = find_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, artifacts, request):
    """A fresh page; when the test fails, a full-page screenshot and the console log are kept."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        stem = re.sub(r"[^\w.-]+", "_", request.node.name)
        shot = artifacts / f"{stem}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
        except Exception as e:  # a crashed page cannot be photographed; say so
            print(f"no screenshot ({e})")
        (artifacts / f"{stem}.console.txt").write_text("\n".join(console))
        print(f"\nbrowser test failed: screenshot {shot}, console {artifacts / (stem + '.console.txt')}")
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report


@dataclass
class BookBuild:
    """The book site built by book/build.py into a scratch folder (tests/browser/test_book.py reads it)."""

    site: Path
    chapters: Path  # the copies the site was built from (build.py stages them beside the site)
    log: str
    seconds: float


@pytest.fixture(scope="session")
def book_site(tmp_path_factory) -> BookBuild:
    """`make book`'s build, from the committed chapters, into a scratch folder: what test_book.py serves."""
    for module in ("sphinx", "myst_nb", "autoapi", "sphinx_book_theme"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (`make book` installs requirements-book.txt)")
    site = tmp_path_factory.mktemp("book") / "site"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "book" / "build.py"), "--out", str(site)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"book/build.py failed:\n{log[-4000:]}"
    return BookBuild(site, site.parent / "book-src" / "chapters", log, time.perf_counter() - start)
