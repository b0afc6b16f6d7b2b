"""The lowest versions pyproject.toml admits for the runtime dependencies and the course extra, one pin a line
(``name>=X`` becomes ``name==X``), for ``make test-oldest``. torch is left out: the lowest torch
that can be installed depends on the machine, and the Makefile installs TORCH_OLDEST."""

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["course"]:
        name, lowest = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+).*", requirement.strip()).groups()
        if name.lower() != "torch":
            yield f"{name}=={lowest}"


if __name__ == "__main__":
    print("\n".join(pins()))
