"""The benchmark scripts run and print their tables (tiny runs; no time is asserted)."""

import pathlib
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(*args):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compare_races_both_libraries_on_the_same_batches():
    pytest.importorskip("zuko")
    before = (BENCHMARKS / "compare.md").read_text()
    before_conditional = (BENCHMARKS / "compare_conditional.md").read_text()
    out = run_script(BENCHMARKS / "compare.py", "--steps", "3", "--seeds", "0", "1", "--targets", "moons",
                     "--conditional-targets", "ring_by_radius", "--tables", "compare", "compare_conditional")
    rows = [line for line in out.splitlines() if line.startswith(("| RealNVP |", "| MAF |", "| NSF"))]
    assert len(rows) == 10  # five flows; each row printed as it finishes, then again in the table
    assert "| NSF conditional | ring_by_radius |" in rows[-1]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        ours_ms, zuko_ms, ratio = map(float, cells[2:5])
        assert ratio == pytest.approx(ours_ms / zuko_ms, abs=0.01)
        assert cells[7].endswith("]") and cells[8].endswith("]")  # mean [min, max] over the two seeds
        assert cells[9] in ("ahead", "tied", "behind")
    assert ("RealNVP 35,344 (nflesson) and 35,344 (zuko); MAF 36,896 (nflesson) and 36,896 (zuko); "
            "NSF 29,368 (nflesson) and 29,368 (zuko); NSF coupling 23,132 (nflesson) and 29,368 (zuko).") in out
    assert "NSF conditional (context of width 1) 29,624 (nflesson) and 29,624 (zuko)." in out
    assert "of 4 rows" in out and "of 1 rows" in out  # two tables: unconditional flows, conditional ones
    assert (BENCHMARKS / "compare.md").read_text() == before, "a short run must not overwrite the table"
    assert (BENCHMARKS / "compare_conditional.md").read_text() == before_conditional


def test_compare_races_the_peers_and_the_digits():
    for library in ("zuko", "nflows", "normflows", "flowjax"):
        pytest.importorskip(library)
    before = {name: (BENCHMARKS / name).read_text() for name in ("compare_peers.md", "compare_digits.md")}
    out = run_script(BENCHMARKS / "compare.py", "--tables", "peers", "digits", "--peer-steps", "3", "--peer-seeds",
                     "0", "--peer-targets", "moons", "--digits-steps", "3", "--digits-seeds", "0", "1")
    lines = out.splitlines()
    for family in ("RealNVP", "MAF", "NSF"):
        rows = [line for line in lines if line.startswith(f"| {family} | moons |")]
        assert [row.split("|")[3].strip() for row in rows[-5:]] == ["nflesson", "zuko", "nflows", "normflows", "FlowJAX"]
        assert rows[-1].split("|")[7].strip() != "-"  # FlowJAX's compile time, apart from its steps
        summary = [line for line in lines if line.startswith(f"| {family} | FlowJAX |")]
        assert summary and float(summary[-1].split("|")[4]) > 0
    digits = [line for line in lines if line.startswith(("| RealNVP | 0.00", "| RealNVP (alternating) | 0.00",
                                                          "| MAF | 0.00"))]
    assert len(digits) == 12  # three flows at two learning rates, printed as they finish, then in the table
    for row in digits:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert "sd" in cells[2] and cells[2].count("[") == 1 and cells[8] in ("ahead", "tied", "behind")
    assert ("RealNVP 83,456 (nflesson) and 83,456 (zuko); RealNVP (alternating) 83,456 (nflesson) and 83,456 "
            "(zuko); MAF 133,120 (nflesson) and 133,120 (zuko).") in out
    assert all((BENCHMARKS / name).read_text() == text for name, text in before.items()), "a short run must not publish"


def test_lessons_benchmark_times_a_notebook(tmp_path):
    lesson = tmp_path / "01_tiny.py"
    lesson.write_text("# %%\nx = sum(range(10))\n")
    out = run_script(BENCHMARKS / "lessons.py", lesson)
    row = next(line for line in out.splitlines() if line.startswith("| 01_tiny |"))
    seconds, mib = (float(c) for c in row.strip("|").split("|")[1:3])
    assert 0 < seconds < 60 and 0 < mib < 1536 and row.endswith("| ok |")


def test_fit_overhead_times_each_loop_against_its_bare_steps():
    before = (BENCHMARKS / "fit_overhead.md").read_text()
    out = run_script(BENCHMARKS / "fit_overhead.py", "--steps", "4", "--repeats", "1")
    rows = [line for line in out.splitlines() if line.startswith("| fit")]
    assert [row.split("|")[1].split(":")[0].strip() for row in rows] == ["fit", "fit_reverse_kl", "fit_flow_matching"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "4" and cells[2] == "5" and cells[5].endswith("%")
    assert (BENCHMARKS / "fit_overhead.md").read_text() == before, "a short run must not overwrite the table"


def test_profile_step_reports_the_optimizer_share():
    out = run_script(BENCHMARKS / "profile_step.py", "maf")
    assert "Self CPU time total" in out
    assert "maf:" in out and "ms per step under the profiler, optimizer step" in out


@pytest.mark.parametrize("name", ["lessons.md", "compare.md", "compare_conditional.md", "fit_overhead.md",
                                  "compare_peers.md", "compare_digits.md"])
def test_readme_shows_the_benchmark_tables_as_written(name):
    sys.path.insert(0, str(BENCHMARKS))
    from publish import readme_block

    assert readme_block(name) == (BENCHMARKS / name).read_text(), f"README.md and benchmarks/{name} disagree"


def test_publish_replaces_only_its_block(tmp_path, monkeypatch):
    sys.path.insert(0, str(BENCHMARKS))
    import publish

    readme = tmp_path / "README.md"
    readme.write_text("top\n<!-- benchmarks/x.md -->\nold\n<!-- end -->\nmiddle\n<!-- benchmarks/y.md -->\nkeep\n<!-- end -->\n")
    monkeypatch.setattr(publish, "ROOT", tmp_path)
    (tmp_path / "benchmarks").mkdir()
    publish.publish("x.md", "| new |", readme)
    assert readme.read_text() == ("top\n<!-- benchmarks/x.md -->\n| new |\n<!-- end -->\nmiddle\n"
                                  "<!-- benchmarks/y.md -->\nkeep\n<!-- end -->\n")
    assert (tmp_path / "benchmarks" / "x.md").read_text() == "| new |\n"
