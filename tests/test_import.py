"""`import nflesson` loads only what every lesson needs: torch, numpy and the package itself. The
ODE solver (torchdiffeq, which loads scipy.integrate), matplotlib, ipywidgets and the entropy coder
load when first used, and no target is built until asked for (issue 24: import within 0.1 s of
torch's)."""

import subprocess
import sys

LATER = ("scipy", "torchdiffeq", "matplotlib", "ipywidgets", "constriction", "IPython")


def test_import_nflesson_loads_no_optional_library_and_builds_no_target():
    code = ("import sys, nflesson, nflesson.targets as t, nflesson.conditional_targets as c\n"
            f"print(sorted(m for m in {LATER!r} if m in sys.modules))\n"
            "print(len(t._REGISTRY.built) + len(c._REGISTRY.built))")
    loaded, built = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                   check=True).stdout.split("\n")[:2]
    assert loaded == "[]" and built == "0"


def test_the_solver_and_the_targets_load_when_used():
    code = ("import sys, torch, nflesson as nf\n"
            "moons = nf.data.get('moons')\n"
            "assert nf.data.get('moons') is moons and nf.data.get('ring_by_radius') is nf.data.get('ring_by_radius')\n"
            "flow = nf.ContinuousFlow(2, velocity=lambda x, t: -x, method='rk4', steps=4)\n"
            "flow(torch.zeros(3, 2))\n"
            "print('torchdiffeq' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
