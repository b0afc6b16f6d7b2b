"""The lessons as files: each .py source has its executed .ipynb pair, in sync, clean to render
on GitHub, with exercises the learner answers (no solution runs with the lesson) and links that
lead somewhere. (Running them is tests/test_course.py's job: it runs the student edition, each
lesson alone in an empty folder, as it is handed out.)"""

import ast
import json
import re

import jupytext
import pytest

from nflesson import exercises
from tools.course import lesson_sources

LESSONS = lesson_sources()
NAMES = [p.stem for p in LESSONS]


def test_the_course_has_its_first_lessons():
    assert NAMES[:1] == ["01_change_of_variables"]


def cells(notebook):
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


@pytest.mark.parametrize("source", LESSONS, ids=NAMES)
def test_pair_is_in_sync(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{source.name} has no paired notebook: python tools/course.py build {source}"
    assert cells(jupytext.read(source)) == cells(jupytext.read(paired)), (
        f"{source.name} and its .ipynb differ: rebuild with python tools/course.py build {source}"
    )


@pytest.mark.parametrize("source", LESSONS, ids=NAMES)
def test_every_figure_has_a_text_alternative(source):
    """Each code cell that shows a picture (a figure, a widget's picture, a GIF) says what it shows,
    in its cell metadata (mystnb: image: alt:, the website's alt text), in the .py and the .ipynb alike."""
    source_cells = jupytext.read(source).cells
    stored = json.loads(source.with_suffix(".ipynb").read_text())["cells"]
    missing, differ = [], []
    for k, cell in enumerate(stored):
        alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
        alt_in_source = source_cells[k].metadata.get("mystnb", {}).get("image", {}).get("alt", "")
        pictures = any(m.startswith("image/") for out in cell.get("outputs", []) for m in out.get("data", {}))
        if pictures and len(alt_in_source.split()) < 5:
            missing.append(f"cell {k}: {''.join(cell['source'])[:60]!r}")
        if alt != alt_in_source:
            differ.append(k)
    assert not missing, f"{source.name}: figure cells without a text alternative: {missing}"
    assert not differ, f"{source.name}: cells {differ} have another alt text in the .ipynb: sync the pair"


@pytest.mark.parametrize("source", LESSONS, ids=NAMES)
def test_stored_notebook_renders_everywhere(source):
    notebook = json.loads(source.with_suffix(".ipynb").read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert "widgets" not in notebook["metadata"], "widget state stops GitHub from rendering the notebook"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "the notebook was not executed top to bottom"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3, "a lesson shows its claims with figures"
    # Stored widgets are their pictures (progress bars their text line): a live view would show
    # "Error displaying widget" in a JupyterLab that has not run the lesson
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})
                and "run the notebook to use the controls" in "".join(o["data"].get("text/plain", ""))]
    assert pictures, "every lesson has at least one widget, stored as its picture"
    assert len(source.with_suffix(".ipynb").read_bytes()) < 3_000_000


@pytest.mark.parametrize("source", LESSONS, ids=NAMES)
def test_lesson_anatomy_and_links(source):
    text = source.read_text()
    for heading in ("What you will learn", "Prerequisites", "## Summary", "Exercise 1", "Exercise 2"):
        assert heading in text, f"{source.name} lacks '{heading}'"
    for link in re.findall(r"\]\((\d\d_[a-z0-9_]+)\.ipynb\)", text):
        assert (source.parent / f"{link}.py").exists(), f"{source.name} links to a missing lesson {link}"
    if source != LESSONS[-1]:
        assert f"({LESSONS[LESSONS.index(source) + 1].stem}.ipynb)" in text, "link to the next lesson"


@pytest.mark.parametrize("source", LESSONS, ids=NAMES)
def test_exercises_are_for_the_learner_to_answer(source):
    """Each exercise is an answer cell holding ``...``, its check, and a cell with the hint and the
    solution commented out; no solution is in the lesson, so Run All answers nothing."""
    notebook = jupytext.read(source)
    questions = exercises.lesson(int(source.name[:2]))
    code = [c.source.strip() for c in notebook.cells if c.cell_type == "code"]
    for name, question in questions.items():
        check = f'questions["{name}"].check(answer)'
        assert code.count(check) == 1, f"exercise {name!r} has one check cell"
        k = code.index(check)
        answer_line = code[k - 1].splitlines()[-1]  # the cell may first give the exercise's data
        assert re.fullmatch(r"answer = \.\.\.(  # .*)?", answer_line), f"the cell before {check} is the answer cell"
        assert code[k + 1] == f'# questions["{name}"].hint()\n# questions["{name}"].solution()'
        for line in question.solution_code.strip().splitlines():
            if len(line.strip()) > 12:
                assert line.strip() not in source.read_text(), f"{source.name} holds the solution of {name!r}"
    assert not [c for c in notebook.cells if "solution" in c.metadata.get("tags", [])]


@pytest.mark.parametrize("source", LESSONS, ids=NAMES)
def test_run_all_congratulates_no_one(source):
    """In the stored run (a Run All), every check says the exercise is not answered yet."""
    notebook = json.loads(source.with_suffix(".ipynb").read_text())
    checks = [c for c in notebook["cells"] if c["cell_type"] == "code" and ".check(answer)" in "".join(c["source"])]
    assert len(checks) == len(exercises.lesson(int(source.name[:2])))
    for cell in checks:
        shown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in cell["outputs"])
        assert "Not answered yet" in shown and "Correct" not in shown, shown


def install_cell(source):
    return next(c.source for c in jupytext.read(source).cells if c.cell_type == "code")


def test_every_lesson_starts_by_installing_nflesson_where_it_is_missing():
    """The first code cell is the same in every lesson and installs the package from the
    repository the website's launch buttons name (book/conf.py), so a lesson opened alone on
    Colab runs."""
    cells = {install_cell(source) for source in LESSONS}
    assert len(cells) == 1, "every lesson has the same install cell"
    repository = re.search(r'REPOSITORY = .* or "([^"]+)"', (LESSONS[0].parents[1] / "book" / "conf.py").read_text())
    assert f"git+https://github.com/{repository.group(1)}\"" in cells.pop()


MOCKED_PIP = """import subprocess
calls = []
subprocess.run = lambda command, **options: calls.append(command)
exec(open({cell!r}).read())
print(calls)
"""


@pytest.mark.parametrize("without_nflesson", [True, False], ids=["fresh-python", "course-venv"])
def test_the_install_cell_runs_pip_only_where_nflesson_is_missing(tmp_path, without_nflesson):
    import subprocess
    import sys

    cell = tmp_path / "cell.py"
    cell.write_text(install_cell(LESSONS[0]))
    python = sys.executable
    if without_nflesson:  # a bare virtual environment, as Colab's Python is before the cell runs
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "bare"], check=True)
        python = tmp_path / "bare" / "bin" / "python"
    out = subprocess.run([python, "-c", MOCKED_PIP.format(cell=str(cell))], capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout
    calls = ast.literal_eval(out)  # the commands the cell ran
    if without_nflesson:
        assert len(calls) == 1 and calls[0][:4] == [str(python), "-m", "pip", "install"]
        assert calls[0][-1].startswith("nflesson @ git+https://github.com/")
    else:
        assert calls == []
