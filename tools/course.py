"""Course tooling (not part of the nflesson package; it needs the course extra): execute the lessons into their paired notebooks, keeping the stored
notebooks clean: no widget state (which stops GitHub from rendering them) and no widget views
(which a notebook opened before it runs shows as "Error displaying widget"), only the pictures
and text lines the widgets carry with them.

``python tools/course.py build [lessons/NN_name.py ...]`` (``make lessons``) re-creates each .ipynb from its
.py source and executes it in the lessons folder, then copies the animations the README shows
from lessons/ (where the lessons write them, next to themselves) into images/;
``python tools/course.py student`` (``make student``) writes the student edition (outputs cleared) to student/.
"""

import pathlib
import re
import shutil
import sys
import time

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def lesson_sources(folder=LESSONS):
    """The lesson sources lessons/NN_name.py, in course order."""
    return sorted(pathlib.Path(folder).glob("[0-9][0-9]_*.py"))


def execute(source, timeout=600, extra_cells=()):
    """Read lesson ``source`` (.py), append ``extra_cells`` (code strings), execute it top to
    bottom in the lessons folder; returns (notebook with outputs, wall time in seconds)."""
    source = pathlib.Path(source)
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = KERNELSPEC
    notebook.cells += [nbformat.v4.new_code_cell(code) for code in extra_cells]
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(source.parent)}}).execute()
    notebook.metadata.pop("widgets", None)
    drop_widget_views(notebook)
    return notebook, time.perf_counter() - start


def drop_widget_views(notebook):
    """Remove the live-widget part of every output that has another representation (nflesson's
    widgets carry a PNG of their figure, progress bars a text line): without a kernel there is no
    widget to show, and JupyterLab, GitHub and the website then show that picture or line."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]


def build(source, timeout=600):
    """Execute lesson ``source`` (.py) top to bottom and write its paired .ipynb with outputs.
    Returns the wall time in seconds."""
    source = pathlib.Path(source)
    notebook, elapsed = execute(source, timeout)
    jupytext.write(notebook, source.with_suffix(".ipynb"), fmt="ipynb")
    jupytext.write(notebook, source, fmt="py:percent")  # same text, the pair's metadata refreshed
    return elapsed


def publish_images(readme=ROOT / "README.md", lessons=LESSONS, images=ROOT / "images"):
    """Copy every lesson output that ``readme`` shows as images/NAME (a GIF or PNG a lesson wrote
    next to itself as lessons/NAME) into ``images``. Returns the paths written."""
    names = sorted(set(re.findall(r"images/([\w.-]+\.(?:gif|png))", pathlib.Path(readme).read_text())))
    written = []
    for name in names:
        if (pathlib.Path(lessons) / name).exists():
            written.append(shutil.copy2(pathlib.Path(lessons) / name, pathlib.Path(images) / name))
    return [pathlib.Path(p) for p in written]


def student_edition(destination, sources=None):
    """Write the student edition of the lessons to ``destination``: the lessons with every
    output cleared (a student sees each result by running it; the answer cells hold ``...``
    and the solutions are not in the notebooks, as in the full edition). Returns the paths
    written."""
    destination = pathlib.Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources or lesson_sources():
        notebook = jupytext.read(source)
        notebook.metadata["kernelspec"] = KERNELSPEC
        path = destination / source.with_suffix(".ipynb").name
        jupytext.write(notebook, path, fmt="ipynb")  # read from .py: no outputs
        written.append(path)
    return written


USAGE = """usage: python tools/course.py build [lessons/NN_name.py ...]
       python tools/course.py student [DESTINATION]   (default: student/)"""


def main(argv):
    command, args = (argv[0], argv[1:]) if argv else (None, [])
    if command == "build":
        for source in [pathlib.Path(a) for a in args] or lesson_sources():
            print(f"{source.name}: {build(source):.1f} s", flush=True)
        for path in publish_images():
            print(f"README picture: {path.relative_to(ROOT)}")
    elif command == "student" and len(args) <= 1:
        destination = pathlib.Path(args[0] if args else ROOT / "student")
        for path in student_edition(destination):
            print(path)
    else:
        sys.exit(USAGE)


if __name__ == "__main__":
    main(sys.argv[1:])
