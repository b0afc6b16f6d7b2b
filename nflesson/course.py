"""Course tooling: execute the lessons into their paired notebooks, keeping the stored
notebooks clean (no widget state, which stops GitHub from rendering them).

``python -m nflesson.course build [lessons/NN_name.py ...]`` re-creates each .ipynb from its
.py source and executes it in the lessons folder.
"""

import pathlib
import sys
import time

import jupytext
import nbformat
from nbclient import NotebookClient

LESSONS = pathlib.Path(__file__).resolve().parents[1] / "lessons"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


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
    return notebook, time.perf_counter() - start


def build(source, timeout=600):
    """Execute lesson ``source`` (.py) top to bottom and write its paired .ipynb with outputs.
    Returns the wall time in seconds."""
    source = pathlib.Path(source)
    notebook, elapsed = execute(source, timeout)
    jupytext.write(notebook, source.with_suffix(".ipynb"), fmt="ipynb")
    jupytext.write(notebook, source, fmt="py:percent")  # same text, the pair's metadata refreshed
    return elapsed


def main(argv):
    if len(argv) < 1 or argv[0] != "build":
        sys.exit("usage: python -m nflesson.course build [lessons/NN_name.py ...]")
    for source in [pathlib.Path(a) for a in argv[1:]] or lesson_sources():
        print(f"{source.name}: {build(source):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
