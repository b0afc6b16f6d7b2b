"""Build the course website: ``python book/build.py [OUT]`` (``make book``; OUT defaults to
book/_build, which git ignores). The pages are made from the lessons' stored outputs: nothing is
executed and nothing is downloaded. The sources are staged in OUT/source (book/*.md,
lessons/NN_name.ipynb, the README's images and the site's badges; conf.py adds the README),
copied with their times so that a second build only redoes what changed, and Sphinx runs with
warnings as errors; the site is in OUT/html. Prints the site's folder; exits with Sphinx's
status."""

import pathlib
import shutil
import sys

from sphinx.cmd.build import build_main

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def sources():
    """{path in the staged source: file in the repository}."""
    files = {path.name: path for path in BOOK.glob("*.md")}
    files |= {f"badges/{path.name}": path for path in BOOK.glob("badges/*.svg")}
    files |= {f"lessons/{path.name}": path for path in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))}
    files |= {f"images/{path.name}": path for path in sorted((ROOT / "images").glob("*")) if path.is_file()}
    return files


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
