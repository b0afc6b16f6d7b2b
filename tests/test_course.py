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
