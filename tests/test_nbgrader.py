"""make nbgrader (tools/nbgrader_course.py): every lesson as an nbgrader assignment whose exercises
are graded by their own checks, and the real nbgrader generating, autograding and scoring
submissions of two lessons offline, in a temporary folder."""

import os
import pathlib
import sys

import nbformat
import pytest

from nflesson import exercises
from tools import course, nbgrader_course

LESSONS = course.lesson_sources()


def cell_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def test_every_lesson_becomes_an_assignment_graded_by_its_own_checks(tmp_path):
    written = nbgrader_course.course_folder(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [f"source/{s.stem}/{s.stem}.ipynb" for s in LESSONS]
    student = course.student_edition(tmp_path / "student")
    readme = (tmp_path / "README.md").read_text()
    for path, plain in zip(written, student):
        lesson = int(path.name[:2])
        questions = exercises.lesson(lesson)
        graded = nbformat.read(path, as_version=4)
        assert "jupytext" not in graded.metadata and graded.metadata.kernelspec.name == "python3"
        assert all(not c.get("outputs") for c in graded.cells if c.cell_type == "code")
        kept = [c for c in nbformat.read(plain, as_version=4).cells if "].hint()" not in c.source or c.cell_type != "code"]
        assert len(kept) == len(graded.cells) == len(nbformat.read(plain, as_version=4).cells) - len(questions)
        total = 0
        for before, after in zip(kept, graded.cells):
            grade_id = cell_id(after)
            if grade_id and grade_id.endswith("_answer"):
                name = grade_id.removesuffix("_answer")
                assert after.metadata.nbgrader["solution"] and not after.metadata.nbgrader["grade"]
                assert after.source == (f"{before.source}\n### BEGIN SOLUTION\n{questions[name].solution_code.strip()}"
                                        f"\n### END SOLUTION")
            elif grade_id:
                name, worth = grade_id.removesuffix("_test"), after.metadata.nbgrader["points"]
                assert before.source == f'questions["{name}"].check(answer)' and before.source in after.source
                assert after.metadata.nbgrader["locked"] and f"({worth} point" in after.source
                assert worth == nbgrader_course.points(lesson, name) and f"| {path.stem} | {name} | {worth} |" in readme
                total += worth
            elif "Each exercise has a cell for your answer" in before.source:
                assert "test cell" in after.source and "solution()" not in after.source
            else:
                assert after.source == before.source
        assert total == sum(nbgrader_course.points(lesson, name) for name in questions)
    config = (tmp_path / "nbgrader_config.py").read_text()
    assert 'course_id = "nflesson"' in config and "code_stub" in config


def test_points_are_set_in_one_table_of_existing_exercises():
    for (lesson, name), worth in nbgrader_course.POINTS.items():
        assert name in exercises.lesson(lesson) and worth > 0
    assert nbgrader_course.points(1, "sigmoid") == 2 and nbgrader_course.points(1, "lognormal") == 1
    with pytest.raises(ValueError, match="lesson 1 has no exercise 'nope'"):
        nbgrader_course.points(1, "nope")
    with pytest.raises(ValueError, match="no exercises for lesson 99"):
        nbgrader_course.points(99, "bits")
    with pytest.raises(TypeError, match="exercise's name must be a string, got int"):
        nbgrader_course.points(1, 3)


def test_bad_arguments_are_refused_in_the_tools_own_words(tmp_path):
    with pytest.raises(TypeError, match="destination must be a folder's path, got int"):
        nbgrader_course.course_folder(3)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is not a folder"):
        nbgrader_course.course_folder(tmp_path / "file")
    with pytest.raises(ValueError, match="sources is empty"):
        nbgrader_course.course_folder(tmp_path / "out", [])
    with pytest.raises(ValueError, match="is not a lesson source"):
        nbgrader_course.course_folder(tmp_path / "out", [tmp_path / "file"])
    with pytest.raises(TypeError, match="a list of lesson sources, got the single path"):
        nbgrader_course.course_folder(tmp_path / "out", LESSONS[0])
    with pytest.raises(TypeError, match="a lesson source must be a path, got int"):
        nbgrader_course.course_folder(tmp_path / "out", [1])
    with pytest.raises(TypeError, match="notebook must be an nbformat notebook, got dict"):
        nbgrader_course.make_gradable({}, 1)
    for before in ([], [nbformat.v4.new_code_cell("")], [nbformat.v4.new_markdown_cell("answer = ...")]):
        lonely_check = nbformat.v4.new_notebook(cells=before + [nbformat.v4.new_code_cell('questions["lognormal"].check(answer)')])
        with pytest.raises(ValueError, match="the check of 'lognormal' does not follow an answer cell"):
            nbgrader_course.make_gradable(lonely_check, 1)
    unchecked = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = ..."),
                                                nbformat.v4.new_code_cell('questions["rotation"].check(answer)')])
    with pytest.raises(ValueError, match=r"found checks of \['rotation'\] and 0 introduction"):
        nbgrader_course.make_gradable(unchecked, 1)
    with pytest.raises(SystemExit, match="usage"):
        nbgrader_course.main(["--help"])
    assert not (tmp_path / "out").exists()


def submit(root, release, student, answers, edits):
    """Hand in ``release`` (a notebook path) as ``student``, with ``answers`` (exercise name -> code)
    appended to their answer cells and the cells of ``edits`` (grade id -> code) rewritten."""
    notebook = nbformat.read(release, as_version=4)
    for cell in notebook.cells:
        name = (cell_id(cell) or "").removesuffix("_answer")
        if cell_id(cell) and cell_id(cell).endswith("_answer") and name in answers:
            cell.source += "\n" + answers[name]
        cell.source = edits.get(cell_id(cell), cell.source)
    path = root / "submitted" / student / release.parent.name / release.name
    path.parent.mkdir(parents=True)
    nbformat.write(notebook, path)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Object of type:sqlalchemy.exc.SAWarning")  # nbgrader's own, on SQLAlchemy 2
def test_nbgrader_grades_the_solutions_the_untouched_release_and_a_typical_mistake(tmp_path, monkeypatch):
    """generate_assignment for lessons 1 and 2; autograde three submissions (each runs its lesson
    top to bottom, about 10 s): the reference solutions of lesson 1 (full marks), its untouched
    release (zero, no crash), and lesson 2 with the shift of a composed affine map left unscaled
    (that exercise's points lost, the check's message recorded, the other two solutions pass;
    its test, rewritten to pass, is restored from the source)."""
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader runs its database migrations with the `alembic` command, found on PATH
    monkeypatch.setenv("PATH", f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    root, (first, second) = tmp_path / "course", LESSONS[:2]
    nbgrader_course.course_folder(root, [first, second])
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()  # the folder's own settings
    config.CourseDirectory.root = str(root)
    config.Exchange.root = str(tmp_path / "exchange")
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    releases = {}
    for source in (first, second):
        result = api.generate_assignment(source.stem)
        assert result["success"], result.get("error")
        releases[source.stem] = root / "release" / source.stem / f"{source.stem}.ipynb"
        text = releases[source.stem].read_text()
        assert "BEGIN SOLUTION" not in text and "YOUR CODE HERE" in text
        for question in exercises.lesson(int(source.name[:2])).values():
            assert question.solution_code.strip().splitlines()[-1] not in text.replace("\\n", "\n")

    solutions = {s.stem: {name: q.solution_code for name, q in exercises.lesson(int(s.name[:2])).items()}
                 for s in (first, second)}
    unscaled_shift = "answer = (math.exp(0.5) * math.exp(-0.2), 1.0 - 0.5)"
    submissions = {("reference", first.stem): (solutions[first.stem], {}),
                   ("untouched", first.stem): ({}, {}),
                   ("typical", second.stem): ({**solutions[second.stem], "compose": unscaled_shift},
                                              {"compose_test": "feedback = True"})}
    for (student, assignment), (answers, edits) in submissions.items():
        submit(root, releases[assignment], student, answers, edits)
        result = api.autograde(assignment, student)
        assert result["success"], result.get("error")

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        def scores(student, assignment):
            notebook = gradebook.find_submission_notebook(assignment, assignment, student)
            return {grade.name: grade.score for grade in notebook.grades}, notebook.score, notebook.max_score

        assert scores("reference", first.stem) == ({"lognormal_test": 1, "rotation_test": 1, "sigmoid_test": 2}, 4, 4)
        assert scores("untouched", first.stem) == ({"lognormal_test": 0, "rotation_test": 0, "sigmoid_test": 0}, 0, 4)
        assert scores("typical", second.stem) == ({"compose_test": 0, "log_density_test": 1, "mle_scale_test": 1}, 2, 3)

    def failures(student, assignment):
        notebook = nbformat.read(root / "autograded" / student / assignment / f"{assignment}.ipynb", as_version=4)
        return {cell_id(c): o["evalue"] for c in notebook.cells for o in c.get("outputs", []) if o["output_type"] == "error"}

    assert failures("reference", first.stem) == {}
    assert failures("typical", second.stem) == {"compose_test": "Not yet: the scale a is right; for the shift b, the shift "
                                                "of layer 1 passes through layer 2, which scales it by exp(-0.2)"}
    untouched = failures("untouched", first.stem)
    assert sorted(untouched) == ["lognormal_test", "rotation_test", "sigmoid_test"]
    assert all(message.startswith("Not answered yet: ") for message in untouched.values())
