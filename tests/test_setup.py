"""The set-up files agree with each other: environment.yml (Binder) lists the runtime
dependencies of pyproject.toml with the same bounds, and CI calls the README's command."""

import pathlib
import re
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch-cpu"}  # PyPI name -> conda-forge name


def split(requirement):
    name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement.strip()).groups()
    return name.lower(), spec.replace(" ", "")


def test_environment_yml_lists_the_runtime_dependencies_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pypi = dict(split(r) for r in project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(split(d) for d in env["dependencies"] if isinstance(d, str) and d not in ("pip",))
    python = conda.pop("python")
    assert python == "=3.11"
    assert conda == {CONDA_NAMES.get(name, name): spec for name, spec in pypi.items()}
    assert {"pip": ["-e ."]} in env["dependencies"]


def test_torch_bound_admits_the_cpu_build_and_nothing_newer():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = dict(split(r) for r in project["dependencies"])["torch"]
    assert "<2.14" in spec and ">=" in spec
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make lab" in (ROOT / "README.md").read_text()


def test_binder_links_open_existing_lessons():
    """Every Binder link in the README opens a lesson that exists, in the same repository."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"https://mybinder\.org/v2/gh/([^/]+/[^/]+)/main\?urlpath=lab/tree/([\w/.]+)", readme)
    assert links, "the README has Binder links"
    assert {repo for repo, _ in links} == {"OWNER/REPO"}, "one placeholder, documented in the README"
    for _, path in links:
        assert (ROOT / path).is_file(), f"a Binder link opens {path}, which does not exist"
