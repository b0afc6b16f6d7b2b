"""Graded assignments (course tooling, outside the package): the lessons as an nbgrader course folder.

``python -m tools.nbgrader_course [DESTINATION]`` (``make nbgrader``; default: graded/) writes
``source/<lesson>/<lesson>.ipynb`` for every lesson, an ``nbgrader_config.py`` and a README for
teachers. Each lesson is its student edition (tools/course.py, outputs cleared) with every exercise
made gradable: the answer cell keeps its ``answer = ...`` line and gets the exercise's reference
solution between nbgrader's solution delimiters (``generate_assignment`` replaces it with a stub),
the check cell becomes a read-only autograder test worth the points of ``POINTS`` that asserts the
lesson's own check, and the hint/solution cells go (the solution is what is graded).
Building the folder needs the course extra; grading it needs nbgrader (the teach extra).
"""

import os
import pathlib
import re
import sys

import nbformat

from nflesson import exercises
from tools import course

# Points per exercise, in one place: every exercise is worth DEFAULT_POINTS, except these
# (lesson, exercise name): the ones whose answer is a function or a tensor, or takes several steps.
DEFAULT_POINTS = 1
POINTS = {
    (1, "sigmoid"): 2,
    (3, "covariance"): 2,
    (5, "inverse"): 2,
    (7, "inverse"): 2,
    (10, "layer"): 2,
}

CHECK_CELL = re.compile(r'questions\["(\w+)"\]\.check\(answer\)')
HINT_CELL = re.compile(r'(# questions\["\w+"\]\.(hint|solution)\(\)\s*)+')
ANSWER_LINE = "answer = ..."
INTRO = re.compile(r"Each exercise has a cell for your answer:.*?shows a worked answer\.", re.DOTALL)
GRADED_INTRO = """\
Each exercise has a cell for your answer: replace the `...` with your answer (or write code
under it that sets `answer`) and run it, then run the test cell below it. That test is what
grades the exercise, for the points it states: it passes when your answer is right and
otherwise stops with a message that says what is off. Stuck? `questions[...].hint()`, with the
exercise's name from its test, gives a nudge."""

CONFIG = '''\
"""nbgrader's settings for the nflesson course (written by `make nbgrader`; see README.md)."""
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "nflesson"
# An unanswered exercise keeps `answer = ...` and fails its test; it does not stop "Run All".
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE (or replace the ... above)"}
# Seconds per cell when autograding: some lessons train a model in one cell.
c.Execute.timeout = 600
'''

README = """\
# nflesson: graded assignments for nbgrader

Written by `make nbgrader` in the nflesson repository: one assignment per lesson, in
`source/<lesson>/<lesson>.ipynb`. Every exercise has an answer cell (the reference solution sits
between `### BEGIN SOLUTION` and `### END SOLUTION`; `generate_assignment` replaces it with a stub)
and a read-only test cell that asserts the lesson's own check, worth the points below.
Running `make nbgrader` again rewrites `source/`, this README and `nbgrader_config.py`; it leaves
nbgrader's own folders (`release/`, `submitted/`, `autograded/`, `feedback/`) and `gradebook.db` alone.

## On a hub, with nbgrader's formgrader

1. The hub's image needs nflesson with its course extra, for the students and for the autograder
   (installed as the repository's README says, *For teachers*), and nbgrader
   (`pip install "nbgrader>=0.9"`, which brings the Assignments and Formgrader tabs).
2. Copy this folder into the instructor's home, then point nbgrader at it and at its settings in
   `~/.jupyter/nbgrader_config.py` (the formgrader reads that file, not this folder's):

       c = get_config()
       c.CourseDirectory.root = "/home/<you>/<this folder>"
       load_subconfig("/home/<you>/<this folder>/nbgrader_config.py")  # course id nflesson, stub, timeout

   The hub's exchange (`/srv/nbgrader/exchange` by default) must exist and be writable by everyone.
3. Formgrader tab (or the commands, run in this folder), for each lesson:
   - *Generate*: `nbgrader generate_assignment 01_change_of_variables` writes the student version to `release/`;
   - *Release*: `nbgrader release_assignment 01_change_of_variables`; students fetch it in the
     Assignments tab, work in it and press *Submit*;
   - *Collect*: `nbgrader collect 01_change_of_variables` copies the submissions into `submitted/`;
   - *Autograde*: `nbgrader autograde 01_change_of_variables` runs every submission top to bottom
     (a lesson takes under a minute) and records each test's points in `gradebook.db`;
     *Manage Submissions* shows them, with the check's message under every failed test;
   - *Feedback*: `nbgrader generate_feedback` and `nbgrader release_feedback`; `nbgrader export`
     writes every grade to `grades.csv`.

Students can still ask for hints, and the package they run holds the reference solutions
(`questions["name"].solution()` shows one, as in the student edition): these assignments grade
practice, not an exam.

## Points

{table}
"""


def points(lesson, name):
    """The points exercise ``name`` of lesson ``lesson`` is worth (POINTS, else DEFAULT_POINTS)."""
    questions = exercises.lesson(lesson)  # refuses a lesson that has no exercises, in its own words
    if not isinstance(name, str):
        raise TypeError(f"an exercise's name must be a string, got {type(name).__name__}")
    if name not in questions:
        raise ValueError(f"lesson {lesson} has no exercise {name!r}; its exercises are {sorted(questions)}")
    return POINTS.get((int(lesson), name), DEFAULT_POINTS)


def _nbgrader(grade_id, **fields):
    """A cell's nbgrader metadata (schema 3)."""
    return {"nbgrader": {"grade_id": grade_id, "locked": False, "schema_version": 3, "task": False, **fields}}


def _lesson_number(source):
    """The lesson number NN of lessons/NN_name.py, with a clear error for any other path."""
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"a lesson source must be a path, got {type(source).__name__}")
    source = pathlib.Path(source)
    if not re.fullmatch(r"\d\d_\w+\.py", source.name) or not source.is_file():
        raise ValueError(f"{source} is not a lesson source (an existing file lessons/NN_name.py)")
    return int(source.name[:2])


def make_gradable(notebook, lesson):
    """Turn the student edition ``notebook`` of lesson ``lesson`` into an nbgrader source notebook,
    in place (see the module's docstring); every other cell stays as it is. Returns the notebook."""
    if not isinstance(notebook, nbformat.NotebookNode):
        raise TypeError(f"notebook must be an nbformat notebook, got {type(notebook).__name__}")
    questions = exercises.lesson(lesson)
    cells, graded, intros = [], [], 0
    for cell in notebook.cells:
        text = cell.source.strip()
        if cell.cell_type == "markdown" and INTRO.search(cell.source):
            cell.source, count = INTRO.subn(GRADED_INTRO, cell.source)
            intros += count
        elif cell.cell_type == "code" and HINT_CELL.fullmatch(text):
            continue
        elif cell.cell_type == "code" and CHECK_CELL.fullmatch(text):
            name = CHECK_CELL.fullmatch(text).group(1)
            answer = cells[-1] if cells and cells[-1].cell_type == "code" else None
            if name not in questions or answer is None or not answer.source.strip() \
                    or not answer.source.strip().splitlines()[-1].startswith(ANSWER_LINE):
                raise ValueError(f"lesson {lesson}: the check of {name!r} does not follow an answer cell "
                                 f"ending in `{ANSWER_LINE}` of one of its exercises {sorted(questions)}")
            answer.source = (f"{answer.source.rstrip()}\n### BEGIN SOLUTION\n"
                             f"{questions[name].solution_code.strip()}\n### END SOLUTION")
            answer.metadata.update(_nbgrader(f"{name}_answer", solution=True, grade=False))
            worth = points(lesson, name)
            cell.source = (f"# Autograder test ({worth} point{'s' * (worth != 1)}): the lesson's own check of your answer.\n"
                           f'feedback = questions["{name}"].check(answer)\n'
                           f"assert feedback, repr(feedback)\nfeedback")
            cell.metadata.update(_nbgrader(f"{name}_test", solution=False, grade=True, locked=True, points=worth))
            graded.append(name)
        cells.append(cell)
    if sorted(graded) != sorted(questions) or intros != 1:
        raise ValueError(f"lesson {lesson}: expected one check cell for each of its exercises {sorted(questions)} "
                         f"and one introduction to them; found checks of {graded} and {intros} introduction(s)")
    notebook.cells = cells
    notebook.metadata.pop("jupytext", None)  # no paired .py file next to a student's copy
    return notebook


def points_table(sources=None):
    """The points of every exercise of ``sources`` (default: every lesson), as a Markdown table."""
    rows = ["| assignment | exercise | points |", "|---|---|---:|"]
    for source in course.lesson_sources() if sources is None else sources:
        lesson = _lesson_number(source)
        rows += [f"| {pathlib.Path(source).stem} | {name} | {points(lesson, name)} |" for name in exercises.lesson(lesson)]
    return "\n".join(rows)


def course_folder(destination, sources=None):
    """Write the nbgrader course folder to ``destination``: ``source/<lesson>/<lesson>.ipynb`` for
    every lesson of ``sources`` (default: all), ``nbgrader_config.py`` and ``README.md``. Returns
    the notebooks written."""
    if not isinstance(destination, (str, os.PathLike)):
        raise TypeError(f"destination must be a folder's path, got {type(destination).__name__}")
    destination = pathlib.Path(destination)
    if destination.exists() and not destination.is_dir():
        raise ValueError(f"destination {destination} exists and is not a folder")
    if isinstance(sources, (str, os.PathLike)):
        raise TypeError(f"sources must be a list of lesson sources, got the single path {sources}")
    sources = list(course.lesson_sources() if sources is None else sources)
    if not sources:
        raise ValueError("no lessons to write: sources is empty")
    lessons = [_lesson_number(source) for source in sources]
    written = []
    for source, lesson in zip(sources, lessons):
        source = pathlib.Path(source)
        [path] = course.student_edition(destination / "source" / source.stem, [source])
        notebook = make_gradable(nbformat.read(path, as_version=4), lesson)
        nbformat.write(notebook, path)
        written.append(path)
    (destination / "nbgrader_config.py").write_text(CONFIG)
    (destination / "README.md").write_text(README.format(table=points_table(sources)))
    return written


def main(argv):
    """``python -m tools.nbgrader_course [DESTINATION]``: write the course folder (default: graded/)."""
    if len(argv) > 1 or any(a.startswith("-") for a in argv):
        sys.exit("usage: python -m tools.nbgrader_course [DESTINATION]   (default: graded/)")
    destination = pathlib.Path(argv[0] if argv else course.ROOT / "graded")
    for path in course_folder(destination):
        print(path)
    print(destination / "nbgrader_config.py")
    print(destination / "README.md")


if __name__ == "__main__":
    main(sys.argv[1:])
