"""Shared test cases: the bijectors under test, each with non-trivial (non-identity) float64
parameters, and the exercises' worked solutions."""

import math

import torch
from torch.autograd.functional import jacobian

import nflesson as nf


def randomize(module, scale=0.5, seed=0):
    """Overwrite every parameter with N(0, scale^2) noise (fresh bijectors are the identity,
    which would hide sign errors), and mark ActNorm layers as initialised."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale)
        for m in module.modules():
            if isinstance(m, nf.ActNorm):
                m.initialized.fill_(True)
    return module


def autograd_log_abs_det(fn, points):
    """log|det| of the autograd Jacobian of fn at each point (one point at a time)."""
    out = []
    for v in points:
        jac = jacobian(lambda u: fn(u.unsqueeze(0))[0].squeeze(0), v)
        out.append(torch.linalg.slogdet(jac).logabsdet)
    return torch.stack(out)


def real_points(n, dim, seed=1):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1.5


# name -> (constructor, dim); every bijector maps R^dim onto R^dim except Exp, Sigmoid and
# LogitPixels (SMALLER_CODOMAIN), whose data-side points are made by their forward map.
CASES = {
    "affine": (lambda: nf.Affine(3), 3),
    "exp": (lambda: nf.Exp(), 3),
    "sigmoid": (lambda: nf.Sigmoid(), 3),
    "logit_pixels": (lambda: nf.LogitPixels(17, alpha=0.05), 3),
    "linear": (lambda: nf.Linear(3), 3),
    "lu_linear": (lambda: nf.LULinear(4), 4),
    "permute_reverse": (lambda: nf.Permute(3), 3),
    "permute_given": (lambda: nf.Permute([2, 0, 3, 1]), 4),
    "actnorm": (lambda: nf.ActNorm(3), 3),
    "planar_2d": (lambda: nf.Planar(2), 2),
    "planar_5d": (lambda: nf.Planar(5), 5),
    "planar_1d": (lambda: nf.Planar(1), 1),
    "radial_2d": (lambda: nf.Radial(2), 2),
    "radial_4d": (lambda: nf.Radial(4), 4),
    "radial_1d": (lambda: nf.Radial(1), 1),
    "coupling_halves": (lambda: nf.AffineCoupling(4, "halves", hidden=8), 4),
    "coupling_alternating": (lambda: nf.AffineCoupling(5, "alternating", hidden=8), 5),
    "coupling_custom_mask": (lambda: nf.AffineCoupling(3, [0, 1, 1], hidden=8), 3),
    "coupling_additive": (lambda: nf.AffineCoupling(4, hidden=8, additive=True), 4),
    "maf": (lambda: nf.MaskedAutoregressive(4, hidden=8), 4),
    "maf_order": (lambda: nf.MaskedAutoregressive(3, hidden=8, order=[2, 0, 1]), 3),
    "maf_1d": (lambda: nf.MaskedAutoregressive(1, hidden=8), 1),
    "iaf": (lambda: nf.Inverse(nf.MaskedAutoregressive(3, hidden=8)), 3),
    "spline": (lambda: nf.RationalQuadraticSpline(3, bins=5, bound=2.0), 3),
    "spline_coupling": (lambda: nf.SplineCoupling(4, "halves", hidden=8, bins=4, bound=2.0), 4),
    "spline_coupling_alternating": (lambda: nf.SplineCoupling(5, "alternating", hidden=8, bins=3, bound=2.5), 5),
    "spline_autoregressive": (lambda: nf.SplineAutoregressive(3, hidden=8, bins=4, bound=2.0), 3),
    "spline_autoregressive_order": (lambda: nf.SplineAutoregressive(3, hidden=8, bins=4, bound=2.0, order=[2, 0, 1]), 3),
    "flow": (lambda: nf.Flow([nf.ActNorm(2), nf.Planar(2), nf.AffineCoupling(2, hidden=8), nf.Radial(2)]), 2),
    "glow": (lambda: nf.flows.glow(4, layers=2, hidden=8), 4),
    "continuous": (lambda: nf.ContinuousFlow(2, nf.VelocityMLP(2, hidden=8, hidden_layers=2), rtol=1e-9, atol=1e-9), 2),
}

# An ODE flow is exact only up to its solver's error: its round trips and log-dets are held to this
# tolerance instead of 1e-10 (the solver's own accuracy is tested in test_continuous.py).
SOLVER_TOLERANCE = {"continuous": 1e-6}


def tolerance(name, exact=1e-10):
    return SOLVER_TOLERANCE.get(name, exact)

SMALLER_CODOMAIN = {"exp", "sigmoid", "logit_pixels"}


def make(name, scale=0.5):
    constructor, dim = CASES[name]
    torch.manual_seed(0)
    return randomize(constructor().double(), scale), dim


def data_points(name, bijector, dim, n=16):
    """Points on the data side of ``bijector``, inside its codomain."""
    if name in SMALLER_CODOMAIN:
        return bijector(real_points(n, dim, seed=2))[0]
    return real_points(n, dim, seed=2)


def run_solution(question):
    """The answer an exercise's worked solution computes (its code, run on its own)."""
    namespace = {"torch": torch, "math": math}
    exec(question.solution_code, namespace)  # noqa: S102 (the course's own solution code)
    return namespace["answer"]
