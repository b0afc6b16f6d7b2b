"""Write a benchmark's Markdown table to benchmarks/NAME and into README.md, between the lines
``<!-- benchmarks/NAME -->`` and ``<!-- end -->``, so that the two never disagree."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_block(name, readme=ROOT / "README.md"):
    """The text README.md holds for benchmarks/NAME (between its markers)."""
    start = f"<!-- benchmarks/{name} -->\n"
    return readme.read_text().split(start, 1)[1].split("<!-- end -->", 1)[0]


def publish(name, table, readme=ROOT / "README.md"):
    """Write ``table`` to benchmarks/NAME and in place of README.md's block for it."""
    (ROOT / "benchmarks" / name).write_text(table + "\n")
    text = readme.read_text()
    old = readme_block(name, readme)
    start = f"<!-- benchmarks/{name} -->\n"
    readme.write_text(text.replace(start + old, start + table + "\n", 1))
