"""Sphinx configuration of the course website (``make book``; see book/build.py).

The settings below are the one place that says where the course lives: the launch buttons of
every page (Binder, Google Colab, a JupyterHub through nbgitpuller) and the README text the site
includes are made from them. ``make book REPO=you/nflesson HUB=https://hub.example.org`` sets
them for one build (the GitHub Pages workflow passes its own repository).
"""

import os
import pathlib
import re
import shutil
import sys
from urllib.parse import urlencode

import mathjax  # django-static-mathjax: a copy of MathJax 3 on PyPI, so pages typeset offline
from sphinx.util import logging

REPOSITORY = os.environ.get("BOOK_REPOSITORY") or "OWNER/REPO"  # owner/name on GitHub
BRANCH = os.environ.get("BOOK_BRANCH") or "main"
JUPYTERHUB = (os.environ.get("BOOK_JUPYTERHUB") or "https://HUB").rstrip("/")  # the class hub
BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"
FIRST_LESSON = "lessons/01_change_of_variables.ipynb"  # what pages that are not lessons launch
# The README's launch badges come from their services; the site shows copies of its own (book/badges).
BADGES = {"https://mybinder.org/badge_logo.svg": "badges/binder.svg",
          "https://colab.research.google.com/assets/colab-badge.svg": "badges/colab.svg",
          "https://img.shields.io/badge/launch-JupyterHub-orange": "badges/jupyterhub.svg"}

ROOT = pathlib.Path(__file__).resolve().parents[1]
logger = logging.getLogger("nflesson.book")
sys.path.insert(0, str(ROOT))  # autodoc imports nflesson from this checkout

project = "nflesson: normalizing flows, lesson by lesson"
author = "the nflesson authors"
copyright = "the nflesson authors (MIT licence)"
root_doc = "index"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
exclude_patterns = ["README.md", "_build"]  # the README is included piecewise, not a page itself

# Notebooks: shown with the outputs they were committed with, never executed here.
nb_execution_mode = "off"
# A widget output carries a PNG of its figure next to the widget view (nflesson.widgets): a page
# without a kernel shows the picture; no widget JavaScript is loaded (it would come from a CDN).
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js = {}
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # notebooks start at a level-1 title and may skip levels

# MathJax from the installed package (copied into _static/mathjax when the build finishes).
MATHJAX = pathlib.Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
mathjax_path = "mathjax/tex-chtml-full.js"

autodoc_member_order = "bysource"
autodoc_typehints = "none"

html_theme = "sphinx_book_theme"
# The theme's sidebar, with its home link inside a landmark (axe-core's "region" rule; see the template).
templates_path = ["_templates"]
# A pause button under every animation (WCAG 2.2.2; paused from the start for reduced motion).
html_static_path = ["_static"]
html_js_files = ["nflesson-motion.js"]
html_css_files = ["nflesson.css"]
html_sidebars = {"**": ["nflesson-home.html", "icon-links.html", "search-button-field.html", "sbt-sidebar-nav.html"]}
html_title = "nflesson"
html_copy_source = False  # the notebooks are on GitHub; copies would double the site's size
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": f"https://github.com/{REPOSITORY}",
    "repository_branch": BRANCH,
    "use_repository_button": True,
    "use_download_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
# default_mode: the theme warns in the console without one; nflesson_launch is not used by the
# templates: it is here so that a change of these settings rewrites every page.
html_context = {"default_mode": "auto", "nflesson_launch": [REPOSITORY, BRANCH, JUPYTERHUB]}


def launch_links(notebook):
    """(name, url, icon) of the launch buttons that open ``notebook`` (a path in the repository)."""
    repo_name = REPOSITORY.split("/")[-1]
    hub_query = urlencode({"repo": f"https://github.com/{REPOSITORY}", "branch": BRANCH,
                           "urlpath": f"lab/tree/{repo_name}/{notebook}"})
    return [
        ("Binder", f"{BINDER}/v2/gh/{REPOSITORY}/{BRANCH}?urlpath=lab/tree/{notebook}",
         "_static/images/logo_binder.svg"),
        ("Colab", f"{COLAB}/github/{REPOSITORY}/blob/{BRANCH}/{notebook}",
         "_static/images/logo_colab.png"),
        ("JupyterHub", f"{JUPYTERHUB}/hub/user-redirect/git-pull?{hub_query}",
         "_static/images/logo_jupyterhub.svg"),
    ]


def add_launch_buttons(app, pagename, templatename, context, doctree):
    """Every page gets a launch menu: a lesson opens itself, any other page the first lesson."""
    if "header_buttons" not in context:
        return
    notebook = f"{pagename}.ipynb" if pagename.startswith("lessons/") else FIRST_LESSON
    context["header_buttons"].append({
        "type": "group", "icon": "fas fa-rocket", "label": "launch-buttons",
        "tooltip": f"Launch {notebook}",
        "buttons": [{"type": "link", "text": name, "url": url, "icon": icon, "label": f"launch-{name.lower()}",
                     "tooltip": f"Open {notebook} on {name}"} for name, url, icon in launch_links(notebook)],
    })


def stage_readme(app):
    """The README, which index.md and teachers.md include, staged with its placeholders
    (OWNER/REPO, the hub HUB) replaced by the settings above and its badges by the site's copies
    (rewritten only when that changes, so that a second build redoes nothing)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text = text.replace("OWNER%2FREPO", REPOSITORY.replace("/", "%2F"))
    text = text.replace("tree%2FREPO%2F", f"tree%2F{REPOSITORY.split('/')[-1]}%2F")
    text = text.replace("OWNER/REPO", REPOSITORY).replace("https://HUB", JUPYTERHUB)
    for remote, local in BADGES.items():
        text = text.replace(f"]({remote})", f"]({local})")
    for image in sorted(set(re.findall(r'<img src="(images/[^"]+)"', text))):
        if not (ROOT / image).is_file():  # a raw HTML image: Sphinx would not notice it is missing
            logger.warning(f"README.md shows {image}, which does not exist (make lessons writes it)")
    staged = pathlib.Path(app.srcdir) / "README.md"
    if not staged.exists() or staged.read_text(encoding="utf-8") != text:
        staged.write_text(text, encoding="utf-8")


def fill_in_the_repository(app, docname, source):
    """The lessons' install cell names the repository as OWNER/REPO too: fill in the setting."""
    if docname.startswith("lessons/"):
        source[0] = source[0].replace("OWNER/REPO", REPOSITORY)


def bars_are_absolute_values(app, what, name, obj, options, lines):
    """The package's docstrings write |det J| for an absolute value, which reST would read as a
    substitution: escape the bars outside ``literals``."""
    for i, line in enumerate(lines):
        parts = line.split("``")
        lines[i] = "``".join(part if k % 2 else part.replace("|", "\\|") for k, part in enumerate(parts))


def copy_files(app, exception):
    """The one MathJax file the pages load, and its fonts, into _static/mathjax; the README's
    images into images/ (its raw HTML <img> tags point there)."""
    if exception is None and app.builder.format == "html":
        images = pathlib.Path(app.outdir) / "images"
        shutil.rmtree(images, ignore_errors=True)
        shutil.copytree(pathlib.Path(app.srcdir) / "images", images)
        target = pathlib.Path(app.outdir) / "_static" / "mathjax"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(MATHJAX / "tex-chtml-full.js", target)
        fonts = pathlib.Path("output", "chtml", "fonts", "woff-v2")
        shutil.copytree(MATHJAX / fonts, target / fonts, dirs_exist_ok=True)


def setup(app):
    app.connect("html-page-context", add_launch_buttons, priority=502)  # after the theme's buttons
    app.connect("builder-inited", stage_readme)
    app.connect("source-read", fill_in_the_repository)
    app.connect("autodoc-process-docstring", bars_are_absolute_values)
    app.connect("build-finished", copy_files)
