"""The course build tool executes a lesson into its paired notebook, without widget state."""

import json

import pytest

from nflesson import course

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
    assert "application/vnd.jupyter.widget-view+json" in outputs[1]["data"]


def test_main_refuses_unknown_commands():
    with pytest.raises(SystemExit, match="usage"):
        course.main(["frobnicate"])


def test_student_edition_removes_every_solution_and_runs(tmp_path):
    """Built from the real lessons: no solution text survives, no outputs are kept, and every
    student notebook runs top to bottom with its exercises unanswered."""
    from nbclient import NotebookClient
    import nbformat

    from nflesson import exercises

    paths = course.student_edition(tmp_path / "student")
    assert [p.stem for p in paths] == [s.stem for s in course.lesson_sources()]
    for path in paths:
        text = path.read_text()
        questions = exercises.lesson(int(path.name[:2]))
        for question in questions.values():
            for line in question._solution.strip().splitlines():
                if len(line.strip()) > 12:
                    assert line.strip() not in text.replace("\\n", "\n"), f"{path.name} leaks: {line}"
        notebook = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
        assert sum(c.source == "# your code here" for c in notebook.cells) == len(questions)
        # run it where the lessons live, so that relative paths (../images) resolve
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(course.LESSONS)}}).execute()
        checks = [o for c in notebook.cells if "check(answer)" in c.source for o in c.outputs]
        assert checks and all("no answer yet" in o["data"]["text/plain"] for o in checks)
