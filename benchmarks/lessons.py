"""Time each lesson top to bottom in a fresh kernel, with the kernel's peak memory, as a learner
runs it (Run All). Budgets: 60 s and 1.5 GB per lesson, 5 min for the course.

    .venv/bin/python benchmarks/lessons.py [lessons/NN_name.py ...]

Prints a Markdown table; a run over all lessons also writes it to benchmarks/lessons.md and into
README.md.
"""

import datetime
import os
import pathlib
import platform
import sys

import torch
from publish import publish

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tools/, outside the package
from tools.course import execute, lesson_sources  # noqa: E402

PEAK_MEMORY = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"  # KiB on Linux


def measure(source):
    notebook, seconds = execute(source, extra_cells=[PEAK_MEMORY])
    peak_mib = int(notebook.cells[-1].outputs[0]["text"]) / 1024
    return seconds, peak_mib


def main(paths):
    sources = [pathlib.Path(p) for p in paths] or lesson_sources()
    rows, total = [], 0.0
    for source in sources:
        seconds, peak = measure(source)
        total += seconds
        verdict = "ok" if seconds <= 60 and peak <= 1536 else "OVER BUDGET"
        rows.append(f"| {source.stem} | {seconds:.1f} | {peak:.0f} | {verdict} |")
        print(rows[-1], flush=True)
    table = "\n".join([
        f"Measured {datetime.date.today()} on {os.cpu_count()} CPU cores ({platform.machine()}), "
        f"torch {torch.__version__}, Python {platform.python_version()}.",
        "",
        "| lesson | time (s) | peak memory (MiB) | budget (60 s, 1.5 GB) |",
        "|---|---:|---:|---|",
        *rows,
        f"| **whole course** | **{total:.1f}** | | {'ok' if total <= 300 else 'OVER BUDGET'} (5 min) |",
    ])
    print(table)
    if not paths:
        publish("lessons.md", table)


if __name__ == "__main__":
    main(sys.argv[1:])
