"""The set-up files agree with each other: environment.yml (Binder) lists the runtime
dependencies of pyproject.toml and its course extra with the same bounds, and CI calls the
README's command."""

import pathlib
import re
import tomllib
import urllib.parse

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch-cpu"}  # PyPI name -> conda-forge name
PIP_ONLY = {"constriction"}  # installed by pip in Binder's environment too (PyPI has its wheels)


def split(requirement):
    name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement.strip()).groups()
    return name.lower(), spec.replace(" ", "")


def test_environment_yml_lists_the_runtime_dependencies_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pypi = dict(split(r) for r in project["dependencies"] + project["optional-dependencies"]["course"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(split(d) for d in env["dependencies"] if isinstance(d, str) and d not in ("pip",))
    python = conda.pop("python")
    assert python == "=3.11"
    assert conda == {CONDA_NAMES.get(name, name): spec for name, spec in pypi.items() if name not in PIP_ONLY}
    pip = sorted(f"{name}{spec}" for name, spec in pypi.items() if name in PIP_ONLY)
    assert {"pip": ["-e .", *pip]} in env["dependencies"]


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


def test_colab_and_hub_links_open_existing_lessons():
    """The README's Colab and nbgitpuller launch links open lessons that exist, in the same
    repository placeholder as the Binder links."""
    readme = (ROOT / "README.md").read_text()
    colab = re.findall(r"\]\(https://colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/main/([\w/.]+)\)", readme)
    hub = re.findall(r"\]\(https://HUB/hub/user-redirect/git-pull\?([^)]+)\)", readme)
    assert colab and hub, "the README has Colab and JupyterHub launch links"
    assert {repo for repo, _ in colab} == {"OWNER/REPO"}
    for _, path in colab:
        assert (ROOT / path).is_file(), f"a Colab link opens {path}, which does not exist"
    for query in hub:
        fields = {key: values[0] for key, values in urllib.parse.parse_qs(query).items()}
        assert fields["repo"] == "https://github.com/OWNER/REPO" and fields["branch"] == "main"
        assert fields["urlpath"].startswith("lab/tree/REPO/")
        path = fields["urlpath"].removeprefix("lab/tree/REPO/")
        assert (ROOT / path).is_file(), f"a JupyterHub link opens {path}, which does not exist"


def test_make_test_installs_what_the_book_test_needs_and_pages_build_with_make_book():
    makefile = (ROOT / "Makefile").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "book" in extras and "teach" in extras and '-e ".[course,dev,bench,book,teach]"' in makefile
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    assert "make book" in workflow and "book/_build/html" in workflow


def test_every_lesson_of_the_course_map_opens_on_binder_colab_and_a_hub():
    readme = (ROOT / "README.md").read_text()
    course_map = readme.split("\n## The course\n", 1)[1].split("\n### ", 1)[0]
    for lesson in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")):
        row = next(line for line in course_map.splitlines() if f"(lessons/{lesson.name})" in line)
        for service in ("mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/lessons/",
                        "colab.research.google.com/github/OWNER/REPO/blob/main/lessons/",
                        "git-pull?repo=https%3A%2F%2Fgithub.com%2FOWNER%2FREPO&branch=main&urlpath=lab%2Ftree%2FREPO%2Flessons%2F"):
            assert f"{service}{lesson.name}" in row, f"lesson {lesson.name} has no {service.split('/')[0]} link"


def test_make_lab_installs_the_course_and_make_test_adds_the_tools():
    import subprocess

    def recipe(target):  # what make would run from scratch (-B), without running it (-n)
        return subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    lab, test = recipe("lab"), recipe("test")
    assert "torch==2.13.0" in lab and '-e ".[course]"' in lab and "[dev" not in lab
    assert '-e ".[course,dev,bench,book,teach]"' in test and "pytest" in test


def test_the_readme_and_pyproject_name_the_same_lowest_python():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lowest = project["requires-python"].removeprefix(">=")
    assert f"You need Python {lowest} or newer" in (ROOT / "README.md").read_text()
