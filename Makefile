# Two commands for learners: `make lab` (open the course) and `make test` (run every test).
# Both create .venv on first use; later runs reinstall only when pyproject.toml changed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A CPU build of torch. On a machine where plain pip would fetch a CUDA build, add e.g.
#   make lab TORCH_PIP_FLAGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
TORCH_PIP_FLAGS ?=

.PHONY: lab test lessons bench student clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_FLAGS) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=lessons $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP)
	$(BIN)/python -m pytest

# Re-execute every lesson into its paired .ipynb (after editing a lessons/NN_name.py).
lessons: $(STAMP)
	$(BIN)/python -m nflesson.course build

# Time every lesson (and its peak memory), then race nflesson's flows against zuko's;
# writes benchmarks/lessons.md and benchmarks/compare.md (about 1 hour on 2 cores).
bench: $(STAMP)
	$(BIN)/python benchmarks/lessons.py
	$(BIN)/python benchmarks/compare.py

# The student edition: solutions removed, outputs cleared, in student/ (git-ignored).
student: $(STAMP)
	$(BIN)/python -m nflesson.course student

clean:
	rm -rf $(VENV) nflesson.egg-info .coverage
