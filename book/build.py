"""Build the course website: ``python book/build.py [OUT]`` (``make book``; OUT defaults to
book/_build, which git ignores). The pages are made from the lessons' stored outputs: nothing is
executed and nothing is downloaded. The sources are staged in OUT/source (book/*.md,
lessons/NN_name.ipynb, the README's images and the site's badges; conf.py adds the README),
copied with their times so that a second build only redoes what changed, and Sphinx runs with
warnings as errors; the site is in OUT/html. A lesson's page gets each exercise's hint and
reference solution folded under it (closed until the reader opens it), from the lesson's
exercises (nflesson.exercises), which the notebooks do not hold. Prints the site's folder;
exits with Sphinx's status."""

import json
import pathlib
import re
import shutil
import sys

from sphinx.cmd.build import build_main

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
sys.path.insert(0, str(ROOT))  # nflesson from this checkout, for the exercises' solutions
from nflesson import exercises  # noqa: E402

ON_DEMAND = re.compile(r'# questions\["(\w+)"\]\.hint\(\)\n# questions\["\1"\]\.solution\(\)')
FOLDED = """<details class="nflesson-{kind}">
<summary>{summary}</summary>

{body}

</details>"""


def sources():
    """{path in the staged source: file in the repository}."""
    files = {path.name: path for path in BOOK.glob("*.md")}
    files |= {f"badges/{path.name}": path for path in BOOK.glob("badges/*.svg")}
    files |= {f"lessons/{path.name}": path for path in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))}
    files |= {f"images/{path.name}": path for path in sorted((ROOT / "images").glob("*")) if path.is_file()}
    return files


def folded_answers(question):
    """A Markdown cell with the exercise's hint and its solution, each folded (HTML details)."""
    hint = question.hint().data.removeprefix("**Hint.** ")
    solution = f"```python\n{question.solution_code.strip()}\n```"
    text = "\n\n".join([FOLDED.format(kind="hint", summary="Hint", body=hint),
                         FOLDED.format(kind="solution", summary="Solution (open it once you have tried)",
                                       body=solution)])
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def with_folded_answers(notebook_path):
    """The lesson notebook's JSON text, with folded_answers after each hint/solution cell."""
    notebook = json.loads(notebook_path.read_text(encoding="utf-8"))
    questions = exercises.lesson(int(notebook_path.name[:2]))
    cells = []
    for cell in notebook["cells"]:
        cells.append(cell)
        found = ON_DEMAND.fullmatch("".join(cell["source"]).strip()) if cell["cell_type"] == "code" else None
        if found:
            cells.append(folded_answers(questions[found.group(1)]))
    notebook["cells"] = cells
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def stage(source):
    wanted = sources()
    if source.exists():
        for path in sorted(source.rglob("*"), reverse=True):
            relative = path.relative_to(source).as_posix()
            if path.is_file() and relative not in wanted and relative != "README.md":
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for relative, original in wanted.items():
        copy = source / relative
        if relative.startswith("lessons/"):  # written only when it changes, so Sphinx redoes only it
            text = with_folded_answers(original)
            if not copy.exists() or copy.read_text(encoding="utf-8") != text:
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_text(text, encoding="utf-8")
            continue
        stat = original.stat()
        if not copy.exists() or copy.stat().st_mtime_ns != stat.st_mtime_ns or copy.stat().st_size != stat.st_size:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(original, copy)


def build(out):
    out = pathlib.Path(out).resolve()
    stage(out / "source")
    args = ["-b", "html", "-W", "--keep-going", "-c", str(BOOK), "-d", str(out / "doctrees"),
            str(out / "source"), str(out / "html")]
    return build_main(args)


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else BOOK / "_build")
    status = build(out)
    if status == 0:
        print(f"the site is in {out / 'html'} (open index.html)")
    sys.exit(status)
