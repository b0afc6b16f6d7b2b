# Two commands for learners: `make lab` (open the course) and `make test` (run every test).
# Both create .venv on first use; later runs reinstall only when pyproject.toml changed.
# `make lab` installs the course (torch, nflesson and its course extra: JupyterLab, jupytext,
# ipywidgets); the other targets add the tools of the tests, the benchmarks and the website (the
# dev, bench and book extras). Course tooling (building the lessons, the student edition, the graded
# assignments) is tools/course.py and tools/nbgrader_course.py, outside the package.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
COURSE := $(VENV)/.installed-course
STAMP := $(VENV)/.installed
# A CPU build of torch. On a machine where plain pip would fetch a CUDA build, add e.g.
#   make lab TORCH_PIP_FLAGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
TORCH_PIP_FLAGS ?=

.PHONY: lab test lessons bench student nbgrader book test-oldest clean

$(COURSE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_FLAGS) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[course]"
	touch $@

$(STAMP): $(COURSE)
	$(BIN)/python -m pip install --quiet -e ".[course,dev,bench,book,teach]"
	touch $@

lab: $(COURSE)
	$(BIN)/jupyter lab --notebook-dir=lessons $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP)
	$(BIN)/python -m pytest

# Re-execute every lesson into its paired .ipynb (after editing a lessons/NN_name.py).
lessons: $(STAMP)
	$(BIN)/python tools/course.py build

# Time every lesson (and its peak memory), then the training loops' time outside their steps, then
# race nflesson's flows against the other libraries; writes benchmarks/lessons.md,
# benchmarks/fit_overhead.md and benchmarks/compare.md (about 1 hour on 2 cores).
bench: $(STAMP)
	$(BIN)/python benchmarks/lessons.py
	$(BIN)/python benchmarks/fit_overhead.py
	$(BIN)/python benchmarks/compare.py

# The student edition: solutions removed, outputs cleared, in student/ (git-ignored).
student: $(STAMP)
	$(BIN)/python tools/course.py student

# Graded assignments: an nbgrader course folder in graded/ (git-ignored): every lesson with its
# exercises autograded by their own checks, nbgrader_config.py, and a README for teachers.
nbgrader: $(STAMP)
	$(BIN)/python -m tools.nbgrader_course

# The course as a website, from the lessons' stored outputs (nothing is executed or downloaded),
# in book/_build/html (git-ignored). REPO=owner/name and HUB=https://your.hub set the launch
# buttons for this build (default: book/conf.py's settings).
book: $(STAMP)
	BOOK_REPOSITORY="$(REPO)" BOOK_JUPYTERHUB="$(HUB)" $(BIN)/python book/build.py

# The lowest versions pyproject.toml admits for the runtime dependencies, in .venv-oldest, then
# the package's tests and lesson 1 there. torch: TORCH_OLDEST, the lowest this machine can install
# (README, Tests). Not part of `make test` or CI; it downloads the old releases.
OLDEST := .venv-oldest
TORCH_OLDEST ?= $(TORCH)
test-oldest:
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet $(TORCH_PIP_FLAGS) "$(TORCH_OLDEST)"
	$(OLDEST)/bin/python -m pip install --quiet -e ".[course]" $$($(PYTHON) tests/lowest_requirements.py) pytest nbval hypothesis pyyaml
	$(OLDEST)/bin/python -m pip list
	$(OLDEST)/bin/python -m pytest -o addopts="" -p no:cacheprovider -m "not browser and not slow" \
	  --ignore=tests/test_course.py --ignore=tests/test_benchmarks.py tests \
	  --nbval-lax --nbval-current-env lessons/01_change_of_variables.ipynb

clean:
	rm -rf $(VENV) $(OLDEST) nflesson.egg-info .coverage book/_build
