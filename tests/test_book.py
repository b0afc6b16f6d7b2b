"""The course website (``make book``): built once per test run from the stored lessons (into
pytest's tmp dir, never book/_build), with Sphinx's warnings as errors and every proxy pointed at
a closed port, so that a build that tried to download something would fail. Then a headless
Chromium (Debian's chromium, driven by Playwright; never a browser Playwright downloads) opens
the landing page and two lessons from a static server on 127.0.0.1 that stops itself, with every
request off the machine refused and recorded: figures and GIFs load, MathJax typesets the maths,
the launch buttons open the page's own lesson, each exercise's solution is folded until the reader
opens it, the landing page's animations are shown at the size asked for, and a crawl of the whole
site finds every internal link and #anchor. Every picture on the site has a text alternative, and
axe-core (bundled by axe-playwright-python, injected from disk) finds no serious or critical
accessibility violation on the landing page, the teachers' page, the API page or any lesson page.
"""

import functools
import html
import html.parser
import http.server
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urldefrag, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPOSITORY, HUB = "test-owner/test-repo", "https://hub.example.org"  # what the test builds with
BUILD_S = 600  # the build takes about 15 s on 2 cores
SERVER_S = 300  # the static server shuts itself down after this, whatever happens
CRAWL_PAGES = 200  # at most this many pages are crawled

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                           for m in ("sphinx", "myst_nb", "sphinx_book_theme", "mathjax")),
                       reason='the book extra is not installed (pip install -e ".[book]"; make test does)'),
]


def outputs(notebook, mime):
    """How many outputs of ``notebook`` carry ``mime``."""
    cells = json.loads(notebook.read_text())["cells"]
    return sum(mime in output.get("data", {}) for cell in cells for output in cell.get("outputs", []))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site's html folder."""
    out = tmp_path_factory.mktemp("book")
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, any download fails at once
    env = dict(os.environ, BOOK_REPOSITORY=REPOSITORY, BOOK_JUPYTERHUB=HUB, http_proxy=closed,
               https_proxy=closed, HTTP_PROXY=closed, HTTPS_PROXY=closed, no_proxy="", NO_PROXY="")
    start = time.monotonic()
    build = subprocess.run([sys.executable, str(ROOT / "book" / "build.py"), str(out)], env=env, cwd=ROOT, check=False,
                           capture_output=True, text=True, timeout=BUILD_S)
    print(f"site built in {time.monotonic() - start:.1f} s")
    assert build.returncode == 0, f"the site does not build:\n{build.stdout[-3000:]}\n{build.stderr[-6000:]}"
    return out / "html"


class Links(html.parser.HTMLParser):
    """The links (a, link) and embedded resources (img, script, iframe...) of a page, and its ids."""

    def __init__(self):
        super().__init__()
        self.links, self.resources, self.ids, self.images = [], [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "link" and attrs.get("href"):
            (self.resources if attrs.get("rel") in ("stylesheet", "preload", "icon") else self.links).append(attrs["href"])
        if tag in ("img", "script", "iframe", "source", "embed") and attrs.get("src"):
            self.resources.append(attrs["src"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))


def parse(path):
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def external(url):
    return url.startswith(("http://", "https://", "//"))


# ---------------------------------------------------------------------------------------------
# the build


def test_site_builds_with_a_page_per_lesson_and_nothing_from_outside(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html") if "_static" not in p.parts}
    lesson_pages = {f"lessons/{nb.stem}.html" for nb in LESSONS}
    assert LESSONS and lesson_pages <= pages, f"missing lesson pages: {lesson_pages - pages}"
    assert {"index.html", "teachers.html", "api.html"} <= pages
    assert not [p for p in pages if p.startswith("lessons/") and p not in lesson_pages], "only the notebooks are pages"

    for page in sorted(pages):
        text = (site / page).read_text(encoding="utf-8")
        found = parse(site / page)
        assert not [r for r in found.resources if external(r)], f"{page} loads something from outside"
        assert "OWNER/REPO" not in text and "https://HUB/" not in text, f"{page} has a placeholder left"
        assert "widget-view+json" not in text and "require.min.js" not in text, f"{page} embeds a widget"

    for notebook in LESSONS:
        found = parse(site / "lessons" / f"{notebook.stem}.html")
        figures = [src for src in found.images if "_images/" in src]
        # every PNG (figures and the widgets' pictures) and every GIF output is an image on the page
        assert len(figures) == outputs(notebook, "image/png") + outputs(notebook, "image/gif"), notebook.name
        assert sum(src.endswith(".gif") for src in figures) == outputs(notebook, "image/gif"), notebook.name
        assert "mathjax/tex-chtml-full.js" in (site / "lessons" / f"{notebook.stem}.html").read_text()
        check_folded_solutions(notebook, (site / "lessons" / f"{notebook.stem}.html").read_text(encoding="utf-8"))

    assert (site / "_static" / "mathjax" / "tex-chtml-full.js").stat().st_size > 100_000
    assert list((site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    api = parse(site / "api.html").ids
    for name in ("nflesson.Flow", "nflesson.fit", "nflesson.flows.realnvp", "nflesson.data.get",
                 "nflesson.viz.save_transformation_gif", "nflesson.widgets.TrainingPlayer"):
        assert name in api, f"the API page does not document {name}"
    landing = (site / "index.html").read_text()
    assert all(f'src="images/{gif.name}"' in landing for gif in (ROOT / "images").glob("*.gif")
               if f"images/{gif.name}" in (ROOT / "README.md").read_text())


def check_folded_solutions(notebook, text):
    """Every exercise of the lesson has its solution on the page, folded (a closed <details>),
    and no stored output congratulates anyone."""
    from nflesson import exercises

    questions = exercises.lesson(int(notebook.name[:2]))
    folds = re.findall(r'<details class="nflesson-solution"( open)?>(.*?)</details>', text, flags=re.S)
    assert len(folds) == len(questions), f"{notebook.name}: {len(folds)} folded solutions for {len(questions)} exercises"
    assert not [opened for opened, _ in folds if opened], f"{notebook.name}: a solution starts open"
    for (_, fold), question in zip(folds, questions.values()):
        code = re.sub(r"<[^>]+>", "", fold)
        assert html.unescape(question.solution_code.strip().splitlines()[-1].strip()) in html.unescape(code)
    assert "Correct." not in text and "✅" not in text, f"{notebook.name}: a stored output says 'Correct'"


# ---------------------------------------------------------------------------------------------
# in a browser


class Server:
    """A static server of ``root`` on 127.0.0.1:<free port> in a thread; it records each request's
    status and shuts itself down after SERVER_S seconds if nobody stopped it before."""

    def __init__(self, root):
        self.statuses = []
        statuses = self.statuses

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                statuses.append((int(code) if str(code).isdigit() else 0, self.path))

            def log_message(self, *args):
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], ConnectionError):  # the browser moved on
                    super().handle_error(request, client_address)

        self.httpd = Quiet(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.watchdog = threading.Timer(SERVER_S, self.httpd.shutdown)
        self.thread.start()
        self.watchdog.start()

    def stop(self):
        self.watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server(site):
    server = Server(site)
    try:
        yield server
    finally:
        server.stop()
    assert not server.thread.is_alive(), "the static server did not stop"


def crawl(base):
    """Follow every internal link from the landing page: [(page, link, what is wrong)]."""
    problems, seen, todo, ids = [], set(), ["index.html"], {}
    fragments = []  # (page, link, target page, anchor)
    while todo and len(seen) < CRAWL_PAGES:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        with urllib.request.urlopen(f"{base}/{page}", timeout=10) as response:
            found = Links()
            found.feed(response.read().decode("utf-8"))
        ids[page] = found.ids
        for link in found.links + found.resources:
            if external(link) or link.startswith(("mailto:", "javascript:")):
                continue
            absolute, anchor = urldefrag(urljoin(f"{base}/{page}", link))
            target = urlparse(absolute).path.lstrip("/")
            if anchor:
                fragments.append((page, link, target or page, anchor))
            if not urlparse(absolute).path or target in seen:
                continue
            try:
                with urllib.request.urlopen(absolute, timeout=10):
                    pass
            except urllib.error.HTTPError as error:
                problems.append((page, link, f"HTTP {error.code}"))
                continue
            if target.endswith(".html") and "_static/" not in target:
                todo.append(target)
    for page, link, target, anchor in fragments:
        if target in ids and anchor not in ids[target]:
            problems.append((page, link, f"no id {anchor!r} on {target}"))
    assert not todo, f"more than {CRAWL_PAGES} pages: the crawl stopped early"
    return problems, seen


def expected_launch(notebook):
    owner_repo = REPOSITORY
    return {
        "binder": f"https://mybinder.org/v2/gh/{owner_repo}/main?urlpath=lab/tree/{notebook}",
        "colab": f"https://colab.research.google.com/github/{owner_repo}/blob/main/{notebook}",
    }


def check_page(page, url, notebook, maths):
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_function("Array.from(document.images).every(img => img.complete)", timeout=30_000)
    broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src)")
    assert not broken, f"{url}: images that did not load: {broken}"
    gifs = page.eval_on_selector_all("img", "imgs => imgs.filter(i => /\\.gif$/.test(i.src) && i.naturalWidth > 0).length")
    if maths:
        page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=30_000)
        page.wait_for_function(  # MathJax has gone through every span.math / div.math
            "Array.from(document.querySelectorAll('.math')).every(e => e.querySelector('mjx-container'))",
            timeout=30_000)
        assert page.locator("mjx-merror").count() == 0, f"{url}: MathJax reports a TeX error"
    if maths:  # a lesson: its solutions are folded until the reader opens one
        solution = page.locator("details.nflesson-solution").first
        assert not solution.locator("pre").is_visible(), f"{url}: a solution shows before it is opened"
        solution.locator("summary").click()
        assert solution.locator("pre").is_visible(), f"{url}: a solution does not open"
    else:  # the landing page shows its animations at the width the README asks for
        widths = page.eval_on_selector_all(
            "img[src$='.gif'][width]", "imgs => imgs.map(i => [i.getAttribute('width'), i.getBoundingClientRect().width])")
        squeezed = [(asked, shown) for asked, shown in widths if shown < 0.9 * float(asked)]
        assert widths and not squeezed, f"{url}: animations shown narrower than asked (asked, shown): {squeezed}"
    for name, href in expected_launch(notebook).items():
        assert page.locator(f"a.btn-launch-{name}").get_attribute("href") == href, f"{url}: the {name} button"
    hub = urlparse(page.locator("a.btn-launch-jupyterhub").get_attribute("href"))
    assert f"{hub.scheme}://{hub.netloc}{hub.path}" == f"{HUB}/hub/user-redirect/git-pull"
    assert parse_qs(hub.query) == {"repo": [f"https://github.com/{REPOSITORY}"], "branch": ["main"],
                                   "urlpath": [f"lab/tree/{REPOSITORY.split('/')[1]}/{notebook}"]}
    return gifs


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")
def loopback_only(outside):
    """A Playwright route handler that lets requests to 127.0.0.1 through and refuses every other,
    noting its URL in ``outside``."""
    def handle(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()
    return handle


def test_site_in_chromium(server, tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").sync_playwright
    with_gif = [nb for nb in LESSONS if outputs(nb, "image/gif")]
    assert LESSONS and with_gif, "no lesson, or no lesson with an animation"
    pages = [("index.html", LESSONS[0], False),  # the landing page launches the first lesson
             (f"lessons/{LESSONS[0].stem}.html", LESSONS[0], True),
             (f"lessons/{with_gif[-1].stem}.html", with_gif[-1], True)]

    outside, errors = [], []

    only_loopback = loopback_only(outside)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.set_default_timeout(30_000)
            page.route("**/*", only_loopback)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "favicon" not in m.text else None)
            gifs = {}
            for path, notebook, maths in pages:
                try:
                    gifs[path] = check_page(page, f"{server.url}/{path}", f"lessons/{notebook.name}", maths)
                except BaseException:
                    page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                    print(f"screenshot: {tmp_path / 'failure.png'}")
                    raise
        finally:
            browser.close()

    assert gifs["index.html"] > 0 and gifs[pages[2][0]] > 0, f"GIFs that loaded: {gifs}"
    assert not outside, f"the pages asked for something off the machine: {outside[:10]}"
    failed = [(code, path) for code, path in server.statuses if code >= 400 and path != "/favicon.ico"]
    assert not failed, f"requests that failed: {failed[:10]}"
    assert not errors, f"errors in the browser: {errors[:10]}"

    problems, crawled = crawl(server.url)
    print(f"crawled {len(crawled)} pages")
    assert {f"lessons/{nb.stem}.html" for nb in LESSONS} <= crawled, "every lesson is reachable from the landing page"
    assert not problems, f"{len(problems)} broken internal links, e.g. {problems[:10]}"


# ---------------------------------------------------------------------------------------------
# accessibility

AXE_IMPACTS = ("serious", "critical")  # what fails the audit; minor and moderate findings are printed


def test_every_picture_on_the_site_has_a_text_alternative(site):
    """Every <img> has an alt that says something: not empty (except the decorative), and not the
    file's own path, which is what Sphinx writes when a notebook output has none (the lessons give
    theirs in cell metadata: mystnb image alt)."""
    missing = []
    for page in sorted(site.rglob("*.html")):
        if "_static" in page.parts:
            continue
        for tag in re.findall(r"<img\b[^>]*>", page.read_text(encoding="utf-8")):
            src = re.search(r'src="([^"]*)"', tag)
            alt = re.search(r'alt="([^"]*)"', tag)
            text = html.unescape(alt.group(1)).strip() if alt else ""
            if not text or (src and (text == src.group(1) or text.endswith(Path(src.group(1)).name))):
                missing.append(f"{page.relative_to(site)}: {tag[:120]}")
    assert not missing, (f"{len(missing)} pictures without a text alternative (a lesson's figure cell takes one as "
                         f"cell metadata, mystnb: image: alt:, in its .py; then rebuild or sync the .ipynb), e.g.\n"
                         + "\n".join(missing[:10]))


def _axe_findings(page, axe, url):
    """[(rule, impact, count, help, first targets)] of axe-core's violations on ``url``, once the
    page has loaded and MathJax has typeset its maths."""
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.math')).every(e => e.querySelector('mjx-container'))", timeout=60_000)
    violations = axe.run(page).response["violations"]
    return [(v["id"], v["impact"], len(v["nodes"]), v["help"], [n["target"] for n in v["nodes"][:3]])
            for v in violations]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")
def test_site_passes_an_axe_core_audit(server):
    """axe-core's rules (WCAG 2.x A and AA and best practices) on the landing page, the teachers'
    and API pages and every lesson page, in the light colour scheme, and on the landing page and
    the first lesson in the dark one too: no serious or critical violation."""
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").sync_playwright
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright",
                                     reason='axe-playwright-python is not installed (pip install -e ".[dev]")')
    pages = [("light", p) for p in ["index.html", "teachers.html", "api.html",
                                    *(f"lessons/{nb.stem}.html" for nb in LESSONS)]]
    pages += [("dark", "index.html"), ("dark", f"lessons/{LESSONS[0].stem}.html")]
    outside, findings = [], {}

    only_loopback = loopback_only(outside)

    axe = axe_module.Axe()  # axe.min.js from the package's folder: nothing is fetched
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for scheme in ("light", "dark"):
                page = browser.new_page(viewport={"width": 1300, "height": 1000}, color_scheme=scheme)
                page.set_default_timeout(60_000)
                page.route("**/*", only_loopback)
                for _, path in [p for p in pages if p[0] == scheme]:
                    findings[scheme, path] = _axe_findings(page, axe, f"{server.url}/{path}")
                assert page.evaluate("document.documentElement.dataset.theme") == scheme, "the colour scheme"
                page.close()
        finally:
            browser.close()

    for (scheme, path), found in findings.items():
        for rule, impact, count, _, _ in found:
            print(f"axe: {path} ({scheme}): {rule} ({impact}) x{count}")
    failing = [f"{path} ({scheme}): {rule} ({impact}, {count} nodes): {help_text}; e.g. {targets}"
               for (scheme, path), found in findings.items()
               for rule, impact, count, help_text, targets in found if impact in AXE_IMPACTS]
    assert not outside, f"the pages asked for something off the machine: {outside[:10]}"
    assert not failing, f"{len(failing)} serious or critical accessibility violations:\n" + "\n".join(failing)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")
def test_animations_can_be_paused(server):
    """Every GIF has a button that freezes it (a canvas with the same text alternative takes its
    place) and plays it again (WCAG 2.2.2); with reduced motion asked for, every GIF starts paused."""
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").sync_playwright
    state = """() => Array.from(document.querySelectorAll("img[src$='.gif']")).map(img => [img.hidden,
        img.nextElementSibling.tagName, img.nextElementSibling.hidden, img.nextElementSibling.getAttribute('aria-label') === img.alt,
        img.nextElementSibling.nextElementSibling.getAttribute('aria-pressed')])"""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for motion in ("no-preference", "reduce"):
                page = browser.new_page(viewport={"width": 1300, "height": 1000}, reduced_motion=motion)
                page.route("**/*", lambda route: route.continue_() if urlparse(route.request.url).hostname == "127.0.0.1"
                           else route.abort())
                page.goto(f"{server.url}/index.html")
                page.wait_for_function("Array.from(document.images).every(img => img.complete)", timeout=30_000)
                paused = motion == "reduce"
                page.wait_for_function(f"document.querySelectorAll('button.nflesson-motion[aria-pressed={str(paused).lower()}]')"
                                       f".length === document.querySelectorAll(\"img[src$='.gif']\").length", timeout=10_000)
                gifs = page.evaluate(state)
                assert gifs and all(g == [paused, "CANVAS", not paused, True, str(paused).lower()] for g in gifs), (motion, gifs)
                button = page.locator("button.nflesson-motion").first
                button.click()
                assert page.evaluate(state)[0] == [not paused, "CANVAS", paused, True, str(not paused).lower()], motion
                assert ("Play" if not paused else "Pause") in button.inner_text()
                page.close()
        finally:
            browser.close()
