"""Smoke test in a real browser: JupyterLab served on loopback, a lesson opened in headless
Chromium (Debian's chromium, driven by Playwright), run top to bottom, and an Explorer widget's
slider moved until its figure is redrawn.

Skipped (with the reason) where /usr/bin/chromium or the playwright package is missing. Playwright
never downloads a browser here: it drives the system chromium. The server and the browser are
always stopped, and the test checks that the server (and every process it started) has exited.
The test never writes to the repository: autosave is off, the page may not save the notebook, and
the server keeps its checkpoints, settings and workspaces in pytest's tmp_path.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SERVER_START_S = 60  # until /api/status answers
KERNEL_READY_S = 60  # until the notebook is rendered and its kernel is idle
RUN_ALL_S = 180  # until every cell has run
REDRAW_S = 15  # until the explorer's figure changes after the slider moved

# Selectors (JupyterLab 4, ipywidgets 8), read off the DOM of a running lab.
NOTEBOOK_CELL = ".jp-NotebookPanel .jp-Notebook .jp-Cell"
CODE_PROMPT = ".jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt"
EXECUTION_INDICATOR = ".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator"  # data-status
KERNEL_NAME = ".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName"
DIALOG = ".jp-Dialog"
STDERR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'  # errors too
# An Explorer is a VBox holding sliders and, as its own child, an Output widget showing the figure
# (a TrainingPlayer's picture is an Image widget, not an img inside an Output: it does not match).
EXPLORER = ".jp-OutputArea-output .widget-vbox:has(.widget-hslider):has(> .widget-output img)"
SLIDER_HANDLE = ".widget-hslider .noUi-handle"  # noUiSlider, role=slider, aria-valuenow
FIGURE_IMG = ".widget-output img"


def lesson_to_open():
    """The lesson the test opens: planar/radial flows (lesson 04) where it exists, else lesson 01."""
    for name in ("04_planar_radial", "01_change_of_variables"):
        if (ROOT / "lessons" / f"{name}.ipynb").exists():
            return name
    pytest.fail("no lesson notebook to open: lessons/01_change_of_variables.ipynb is missing")


try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(sync_playwright is None, reason="the playwright package is not installed"),
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)"),
]


# ---------------------------------------------------------------------------------------------
# processes


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proc_table():
    """{pid: (ppid, start time)} from /proc (empty where there is no /proc)."""
    table = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z":  # zombies are gone, only not yet reaped
                table[int(entry)] = (int(fields[1]), fields[19])
    return table


def _descendants(pid):
    """[(pid, start time)] of every living descendant of ``pid``."""
    table = _proc_table()
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, start) in table.items():
            if ppid == parent:
                found.append((child, start))
                todo.append(child)
    return found


def _alive(processes):
    """The ones of [(pid, start time)] still running (same pid and same start time)."""
    table = _proc_table()
    return [(pid, start) for pid, start in processes if table.get(pid, (None, None))[1] == start]


class LabServer:
    """JupyterLab on 127.0.0.1:<free port>, no token, no password, the repository as root, with
    its own process group and throw-away config, data, runtime, settings and workspace dirs."""

    def __init__(self, workdir):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "jupyterlab.log"
        settings = workdir / "lab-settings"
        user_settings = {  # no autosave, every cell in the DOM, no news/update pop-ups
            "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
            "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        }
        for plugin, values in user_settings.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ)
        for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")]:
            env[var] = str(workdir / sub)
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            "--IdentityProvider.token=", "--PasswordIdentityProvider.hashed_password=",
            "--ServerApp.allow_root=True", f"--ServerApp.root_dir={ROOT}",
            f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            # An absolute path: checkpoints go here, not into lessons/.ipynb_checkpoints.
            f"--FileCheckpoints.checkpoint_dir={workdir / 'checkpoints'}",
        ]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self._children = []

    def log_tail(self, chars=4000):
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_until_up(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        pytest.fail(f"JupyterLab did not answer on {self.url} within {timeout} s:\n{self.log_tail()}")

    def stop(self):
        """SIGTERM to the server's process group (the server shuts its kernels down), SIGKILL if it
        hangs; then end any process it started (kernels live in their own sessions) that is left."""
        if self.process.poll() is None:
            self._children += _descendants(self.process.pid)
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = _alive(self._children)
            for pid, _ in left:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while left and time.monotonic() < deadline:
                time.sleep(0.1)
                left = _alive(left)
        self._log.close()
        return _alive(self._children)


@pytest.fixture
def lab_server(tmp_path):
    server = LabServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# the test


def _poll(condition, timeout, interval=0.25):
    """Call ``condition`` until it returns something true; return that, or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _read_only(blocked):
    """A route handler: the page may read the repository's files but never save, rename or delete
    them; ``blocked`` lists what was refused. Checkpoints (JupyterLab makes one on opening a
    notebook that has none) are let through: the server keeps them outside the repository."""
    def handle(route):
        request = route.request
        checkpoint = request.method == "POST" and urlparse(request.url).path.endswith("/checkpoints")
        if request.method in ("GET", "HEAD") or checkpoint:
            route.continue_()
        else:
            blocked.append(f"{request.method} {request.url}")
            route.abort()
    return handle


def _menu(page, menu, item):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def test_lesson_runs_and_explorer_redraws_in_chromium(lab_server, tmp_path):
    lesson = lesson_to_open()
    n_cells = len(json.loads((ROOT / "lessons" / f"{lesson}.ipynb").read_text())["cells"])
    lab_server.wait_until_up(SERVER_START_S)

    console, blocked = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(f"page error: {e}"))
            page.route("**/api/contents/**", _read_only(blocked))
            try:
                _check_lesson(page, lab_server.url, lesson, n_cells)
            except BaseException:
                try:
                    page.screenshot(path=str(tmp_path / "failure.png"))
                    print(f"screenshot: {tmp_path / 'failure.png'}")
                except Exception as exc:  # the page may be gone; the first error is what matters
                    print(f"no screenshot: {exc}")
                print("browser console errors:", *console[-20:], sep="\n  ")
                print("JupyterLab log (tail):", lab_server.log_tail(), sep="\n")
                raise
        finally:
            browser.close()
    print("writes refused:", *blocked or ["none"], sep="\n  ")

    left = lab_server.stop()
    assert lab_server.process.returncode is not None, "the JupyterLab server is still running"
    assert not left, f"processes started by the server are still running: {left}"


def _check_lesson(page, url, lesson, n_cells):
    page.goto(f"{url}/lab/tree/lessons/{lesson}.ipynb")

    # 1. The notebook is rendered and its python3 kernel starts by itself: no kernel dialog.
    def kernel_ready_or_dialog():
        if page.locator(DIALOG).first.is_visible():
            return "dialog"
        indicator = page.locator(EXECUTION_INDICATOR)
        if (page.locator(NOTEBOOK_CELL).count() == n_cells and indicator.count()
                and indicator.first.get_attribute("data-status") == "idle"
                and any(name.strip() and "No Kernel" not in name
                        for name in page.locator(KERNEL_NAME).all_inner_texts())):
            return "ready"
        return None

    state = _poll(kernel_ready_or_dialog, KERNEL_READY_S)
    if state == "dialog":
        dialog = page.locator(DIALOG).first.inner_text()
        pytest.fail(f"a dialog appeared instead of the kernel starting: {dialog!r}")
    assert state == "ready", (f"{lesson}.ipynb did not render ({page.locator(NOTEBOOK_CELL).count()} of "
                              f"{n_cells} cells) or its kernel was not idle within {KERNEL_READY_S} s")
    kernel = page.locator(KERNEL_NAME).first.inner_text().strip()
    assert kernel.startswith("Python 3"), f"the notebook started the kernel {kernel!r}, not python3"
    time.sleep(1)  # a kernel-selection dialog would open right after the session starts
    assert not page.locator(DIALOG).first.is_visible(), page.locator(DIALOG).first.inner_text()

    # 2. Before anything runs, the stored outputs show the widgets' pictures, never the error a
    # widget view without its kernel-side model gives (the course build stores no views).
    # JupyterLab draws only the cells in view: scroll through the notebook, looking at each screen.
    stored = page.locator(".jp-OutputArea-output")
    assert _poll(lambda: stored.locator("img").count() > 0, 10), "the stored figures are not shown"
    scroller = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first
    stale = []
    for _ in range(400):
        time.sleep(0.15)
        stale += page.locator(".jp-OutputArea-output", has_text="Error displaying widget").all_inner_texts()
        if scroller.evaluate("e => { const end = e.scrollTop + e.clientHeight >= e.scrollHeight - 2;"
                             " e.scrollTop += 0.8 * e.clientHeight; return end; }"):
            break
    assert not stale, f"before running, a stored widget shows {stale[0]!r}"
    scroller.evaluate("e => { e.scrollTop = 0; }")

    # 3. Clear the stored outputs (so that everything checked below comes from this run), run all.
    _menu(page, "Edit", "Clear Outputs of All Cells")
    _poll(lambda: page.locator(f"{NOTEBOOK_CELL} .jp-OutputArea-output").count() == 0, 10)
    _menu(page, "Run", "Run All Cells")

    def prompts():
        return [p.strip() for p in page.locator(CODE_PROMPT).all_inner_texts() if p.strip()]

    assert _poll(lambda: any(p != "[ ]:" for p in prompts()), 20), "Run All Cells did not start running"

    def finished():  # nothing queued or running, twice in a row
        for _ in range(2):
            status = page.locator(EXECUTION_INDICATOR).first.get_attribute("data-status")
            if "[*]:" in prompts() or status != "idle":
                return False
            time.sleep(0.5)
        return True

    started = time.monotonic()
    assert _poll(finished, RUN_ALL_S, interval=0.5), (
        f"{lesson} still running after {RUN_ALL_S} s: prompts {prompts()}")
    print(f"{lesson}: all cells ran in {time.monotonic() - started:.1f} s")

    tracebacks = [text for text in page.locator(STDERR_OUTPUT).all_inner_texts() if "Traceback" in text]
    assert not tracebacks, f"{lesson} raised:\n" + "\n\n".join(t[-3000:] for t in tracebacks)
    broken = page.locator(".jp-OutputArea-output", has_text="Error displaying widget")
    assert broken.count() == 0, f"a widget failed to render: {broken.first.inner_text()!r}"
    not_run = [p for p in prompts() if not re.fullmatch(r"\[\d+\]:", p)]
    counts = [int(p[1:-2]) for p in prompts() if p not in not_run]
    n_code = page.locator(".jp-NotebookPanel .jp-CodeCell").count()
    assert not not_run and max(counts, default=0) == n_code, (  # a fresh kernel numbers them 1..n
        f"not every one of the {n_code} code cells ran: prompts {prompts()}")

    # 4. Move a slider of an explorer: its figure must be redrawn.
    explorers = page.locator(EXPLORER)
    assert _poll(explorers.count, 10), f"{lesson} shows no Explorer widget (sliders above a figure)"
    explorer = explorers.first
    image = explorer.locator(FIGURE_IMG).first
    handle = explorer.locator(SLIDER_HANDLE).first
    handle.scroll_into_view_if_needed()
    before = image.get_attribute("src")
    value = float(handle.get_attribute("aria-valuenow"))
    key = "ArrowRight" if value < float(handle.get_attribute("aria-valuemax")) else "ArrowLeft"
    handle.focus()
    for _ in range(5):
        page.keyboard.press(key)
    assert float(handle.get_attribute("aria-valuenow")) != value, "the slider did not move"
    moved = time.monotonic()
    assert _poll(lambda: explorer.locator(FIGURE_IMG).first.get_attribute("src") != before, REDRAW_S), (
        f"the explorer's figure did not change within {REDRAW_S} s of moving its slider")
    print(f"figure redrawn {time.monotonic() - moved:.1f} s after the slider moved")
    errors = [t for t in explorer.locator(STDERR_OUTPUT).all_inner_texts() if "Traceback" in t]
    assert not errors, f"the explorer's callback raised:\n{errors[0]}"
