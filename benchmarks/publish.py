"""Write a benchmark's Markdown table to benchmarks/NAME and into README.md, between the lines
``<!-- benchmarks/NAME -->`` and ``<!-- end -->``, so that the two never disagree."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
END = "<!-- end -->"


def _split(text, name):
    """(text up to and including NAME's start marker, its block, the rest from the end marker)."""
    start = f"<!-- benchmarks/{name} -->\n"
    before, rest = text.split(start, 1)
    block, after = rest.split(END, 1)
    return before + start, block, END + after


def readme_block(name, readme=ROOT / "README.md"):
    """The text README.md holds for benchmarks/NAME (between its markers)."""
    return _split(readme.read_text(), name)[1]


def publish(name, table, readme=ROOT / "README.md"):
    """Write ``table`` to benchmarks/NAME and in place of README.md's block for it."""
    (ROOT / "benchmarks" / name).write_text(table + "\n")
    before, _, after = _split(readme.read_text(), name)
    readme.write_text(before + table + "\n" + after)
