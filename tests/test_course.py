"""The course build tool executes a lesson into its paired notebook, without widget state."""

import json

import pytest

from tools import course

LESSON = '''# %% [markdown]
# # A tiny lesson

# %%
import ipywidgets
print(6 * 7)
ipywidgets.IntSlider(3)
'''


def test_build_executes_the_source_into_its_pair(tmp_path):
    source = tmp_path / "01_tiny.py"
    source.write_text(LESSON)
    assert course.lesson_sources(tmp_path) == [source]
    assert course.build(source) > 0
    notebook = json.loads(source.with_suffix(".ipynb").read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert "widgets" not in notebook["metadata"]
    outputs = notebook["cells"][1]["outputs"]
    assert outputs[0]["text"] == ["42\n"]
    # the live view is dropped (no kernel, no widget); the widget's text representation stays
    assert outputs[1]["data"] == {"text/plain": ["IntSlider(value=3)"]}


def test_main_refuses_unknown_commands():
    with pytest.raises(SystemExit, match="usage"):
        course.main(["frobnicate"])


def test_publish_images_copies_what_the_readme_shows(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text('<img src="images/05_a.gif"> and ![x](images/01_b.png) and images/missing.gif')
    lessons, images = tmp_path / "lessons", tmp_path / "images"
    lessons.mkdir()
    images.mkdir()
    for name in ("05_a.gif", "01_b.png", "06_not_shown.gif"):
        (lessons / name).write_bytes(name.encode())
    written = course.publish_images(readme, lessons, images)
    assert sorted(p.name for p in written) == ["01_b.png", "05_a.gif"]
    assert sorted(p.name for p in images.iterdir()) == ["01_b.png", "05_a.gif"]
    assert (images / "05_a.gif").read_bytes() == b"05_a.gif"


def snapshot(folder):
    """Every file under folder with its size and modification time."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_student_edition_removes_every_solution_and_runs_alone(tmp_path):
    """Built from the real lessons: no solution text is there, no outputs are kept, and every
    student notebook runs top to bottom with its exercises unanswered, copied alone into an
    empty folder (no images/, no repository around it), writing nothing outside that folder."""
    from nbclient import NotebookClient
    import nbformat

    from nflesson import exercises

    alone = tmp_path / "handed_out"
    paths = course.student_edition(alone)
    repository = snapshot(course.ROOT / "images")
    assert [p.stem for p in paths] == [s.stem for s in course.lesson_sources()]
    for path in paths:
        text = path.read_text()
        questions = exercises.lesson(int(path.name[:2]))
        for question in questions.values():
            for line in question.solution_code.strip().splitlines():
                if len(line.strip()) > 12:
                    assert line.strip() not in text.replace("\\n", "\n"), f"{path.name} leaks: {line}"
        notebook = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
        answer_cells = [c for c in notebook.cells if c.cell_type == "code" and c.source.strip()
                        and c.source.strip().splitlines()[-1].startswith("answer = ...")]
        assert len(answer_cells) == len(questions)
        assert "collapsed" not in text, "the edition's text speaks of collapsed solution cells"
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(alone)}}).execute()
        checks = [o for c in notebook.cells if "check(answer)" in c.source for o in c.outputs]
        assert checks and all(o["data"]["text/plain"].startswith("Not answered yet: ") for o in checks)
    assert [p.name for p in tmp_path.iterdir()] == ["handed_out"], "a lesson wrote outside its folder"
    assert snapshot(course.ROOT / "images") == repository, "a lesson wrote into the repository's images/"
    assert sorted(p.name for p in alone.glob("*.gif")), "the lessons' GIFs are written next to them"
