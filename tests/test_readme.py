"""The README as a learner uses it: every code block runs as written (the Python ones in an empty
folder, in a fresh interpreter; each make command names a target the Makefile has), the numbers
its comments state are the ones the run prints, and its package section names the whole public
API."""

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nflesson as nf

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def section(title):
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_has_code_to_run():
    assert len(blocks("python")) >= 1 and len(blocks("bash")) >= 1
    assert not re.findall(r"```(?!python|bash|\n)(\w+)", README), "a code block in a language this test does not run"


@pytest.mark.slow
@pytest.mark.parametrize("code", blocks("python"), ids=lambda code: code.splitlines()[0][:40])
def test_python_blocks_run_as_written_in_an_empty_folder(code, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, f"the README's code fails:\n{run.stderr[-3000:]}"
    for written in re.findall(r'"([\w.-]+\.(?:gif|png))"', code):
        assert (tmp_path / written).stat().st_size > 10_000, f"{written} was not written"
    for line in code.splitlines():  # a comment "about X" after a print states what it prints
        stated = re.search(r"print\(\"([^\"]+)\".*# about ([\d.]+)", line)
        if stated:
            printed = re.search(re.escape(stated.group(1)) + r" ([\d.]+)", run.stdout)
            assert printed, f"the run did not print {stated.group(1)!r}: {run.stdout[-500:]}"
            assert abs(float(printed.group(1)) - float(stated.group(2))) <= 0.005, (
                f"the README says about {stated.group(2)}, the run printed {printed.group(1)}")


def test_make_commands_name_targets_that_exist():
    commands = [line.split("#")[0].split() for code in blocks("bash") for line in code.splitlines()]
    targets = [words[1] for words in commands if words[:1] == ["make"]]
    assert targets
    for target in targets:
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=False)
        assert dry.returncode == 0, f"make {target}: {dry.stderr}"


def public_names():
    factories = [name for name, f in inspect.getmembers(nf.flows, inspect.isfunction)
                 if f.__module__ == "nflesson.flows" and not name.startswith("_")]
    return sorted(set(nf.__all__) | set(factories) | {"digits"})


@pytest.mark.parametrize("name", public_names())
def test_the_package_section_names_the_whole_public_api(name):
    assert re.search(rf"\b{name}\b", section("The package")), f"the README's package section omits {name}"


def test_table_rows_keep_their_columns():
    """A '|' inside a table cell (an image's alt text, say) splits the row: every row of a table
    has as many cells as its header."""
    for block in re.findall(r"(?:^\|.*\|\n)+", README, flags=re.M):
        rows = [row for row in block.splitlines() if not re.fullmatch(r"\|[-:| ]+\|", row)]
        widths = {len(re.split(r"(?<!\\)\|", row)) for row in rows}
        assert len(widths) == 1, f"a table row has a different number of cells: {rows[0][:80]}"


def test_every_image_says_what_it_shows():
    """Each <img> has an alt of a few words, and each Markdown image ![text](...) a text: GitHub and
    the website show them to readers who cannot see the picture."""
    tags = re.findall(r"<img\b[^>]*>", README)
    assert tags, "the README shows its animations as <img> tags"
    for tag in tags:
        alt = re.search(r'\balt="([^"]*)"', tag)
        assert alt and len(alt.group(1).split()) >= 3, f"an image without a text alternative: {tag[:100]}"
    for text, target in re.findall(r"!\[([^\]]*)\]\(([^)]*)\)", README):
        assert text.strip(), f"a Markdown image without a text alternative: {target}"
