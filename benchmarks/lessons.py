"""Time each lesson top to bottom in a fresh kernel, with the kernel's peak memory, as a learner
runs it (Run All). Budgets (DESIGN.md): 40 s per lesson (60 s at the very most) and 1 GB, 4 minutes
for the course.

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


def verdict_of(seconds, peak_mib):
    """'ok' within 40 s and 1 GB; over 40 s but within the 60 s ceiling, how far over; else OVER BUDGET."""
    if seconds > 60 or peak_mib > 1024:
        return "OVER BUDGET"
    return "ok" if seconds <= 40 else f"{seconds - 40:.1f} s over 40 s"


def main(paths):
    sources = [pathlib.Path(p) for p in paths] or lesson_sources()
    rows, total = [], 0.0
    for source in sources:
        seconds, peak = measure(source)
        total += seconds
        verdict = verdict_of(seconds, peak)
        rows.append(f"| {source.stem} | {seconds:.1f} | {peak:.0f} | {verdict} |")
        print(rows[-1], flush=True)
    table = "\n".join([
        f"Measured {datetime.date.today()} on {os.cpu_count()} CPU cores ({platform.machine()}), "
        f"torch {torch.__version__}, Python {platform.python_version()}.",
        "",
        "| lesson | time (s) | peak memory (MiB) | budget (40 s, 1 GB) |",
        "|---|---:|---:|---|",
        *rows,
        f"| **whole course** | **{total:.1f}** | | {'ok' if total <= 240 else 'OVER BUDGET'} (4 min) |",
    ])
    print(table)
    if not paths:
        publish("lessons.md", table)


if __name__ == "__main__":
    main(sys.argv[1:])
