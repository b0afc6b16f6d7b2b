"""Numerics under extreme parameters (issue 20), in float64: every factory of nflesson.flows and
the spline layers, with 0.7 N(0, 1) added to every parameter (what too large a learning rate does
in a few steps; fixed seeds), round-trips its whole composition (data -> inverse -> forward) to a
stated tolerance and keeps finite log-densities; and the spline's knots and slopes stay within the
ranges nflesson.spline documents, whatever its raw numbers.

A round trip cannot beat the map's own conditioning. The error is measured relative to the
largest coordinate the round trip passes through, max(1, max |z|): the affine flows' unbounded
shifts send some data points to |z| ~ 1e8, and x = z e^s + t then cancels terms that large (for the
spline flows |z| stays below about 9, so their tolerances are nearly absolute ones). Each tolerance
is 10 to 100 times the largest relative error measured over 12 seeds of 2,000 points each (4 and 7
times for the two spline flows, kept tight on purpose), noted alongside with the reason for its size.
"""

import pytest
import torch

import nflesson as nf
from nflesson.spline import (MAX_BIN_SLOPE, MAX_DERIVATIVE, MIN_BIN, MIN_DERIVATIVE, SIZE_BOUND, knots,
                             parameter_count, rational_quadratic)

F64 = torch.float64
SCALE = 0.7  # the perturbation added to every parameter, times N(0, 1)
SEEDS = range(3)
DIM, POINTS = 3, 300

# name: (builder, tolerance on max |forward(inverse(x)) - x| / max(1, max |z|))
FLOWS = {
    # exact solves (W = I + 0.7 N stays far from singular for these seeds: |z| up to 1e3) and the
    # closed-form (radial) or Newton (planar) inverses, solved to eps; measured 1e-15
    "linear": (lambda: nf.flows.linear(DIM, layers=2), 1e-13),
    "planar": (lambda: nf.flows.planar(DIM, layers=8), 1e-14),
    "radial": (lambda: nf.flows.radial(DIM, layers=8), 1e-14),
    # affine couplings: a scale up to e^3 per layer (soft-clamped log-scale) times the conditioners'
    # gains; measured 4e-13 (RealNVP), 8e-15 (NICE), 2e-14 (Glow)
    "realnvp": (lambda: nf.flows.realnvp(DIM, layers=4, hidden=16), 1e-11),
    "nice": (lambda: nf.flows.realnvp(DIM, layers=4, hidden=16, additive=True), 1e-13),
    "glow": (lambda: nf.flows.glow(DIM, layers=2, hidden=16), 1e-12),
    # affine autoregressive layers chain the unbounded shifts through the coordinates as well as
    # through the layers; measured 2e-12 (MAF) and 7e-11 (IAF, whose data side is the dim-pass one)
    "maf": (lambda: nf.flows.maf(DIM, layers=4, hidden=16), 1e-10),
    "iaf": (lambda: nf.flows.iaf(DIM, layers=4, hidden=16), 1e-9),
    # splines: the soft-clamped widths and heights (nflesson.spline) bound every layer's slopes and
    # its sensitivity to the conditioner's outputs; measured 3e-10 (coupling: absolute errors up to
    # 2e-9) and 2e-8 (autoregressive: dim splines chained per layer, where a coupling layer has
    # one; absolute up to 1e-7). Before the bounds: absolute errors up to 4e-3 and 3e-2.
    "nsf": (lambda: nf.flows.nsf(DIM, layers=4, hidden=16, bins=5), 1e-9),
    "nsf_autoregressive": (lambda: nf.flows.nsf(DIM, layers=4, hidden=16, bins=5, autoregressive=True), 1e-7),
    # single spline layers: one spline per coordinate, inverted to about 1e-15 .. 3e-12
    "spline": (lambda: nf.Flow([nf.RationalQuadraticSpline(DIM, bins=5)]), 1e-13),
    "spline_coupling": (lambda: nf.Flow([nf.SplineCoupling(DIM, hidden=16, bins=5)]), 1e-13),
    "spline_autoregressive": (lambda: nf.Flow([nf.SplineAutoregressive(DIM, hidden=16, bins=5)]), 1e-10),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread is faster than two that wait for each other (several times so
    on a busy machine); the previous setting is restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def perturbed(build, seed, scale=SCALE):
    """A float64 flow from ``build`` with scale * N(0, 1) added to every parameter; ActNorm layers
    are marked initialised, so that their perturbed shift and scale are used as they are."""
    torch.manual_seed(seed)
    flow = build().double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator, dtype=F64))
    for module in flow.modules():
        if isinstance(module, nf.ActNorm):
            module.initialized.fill_(True)
    return flow


def data(seed, n=POINTS):
    return 2 * torch.randn(n, DIM, generator=torch.Generator().manual_seed(1000 + seed), dtype=F64)


def test_every_factory_of_nflesson_flows_is_covered():
    factories = {name for name in dir(nf.flows) if not name.startswith("_")
                 and callable(getattr(nf.flows, name)) and getattr(nf.flows, name).__module__ == nf.flows.__name__}
    assert factories <= set(FLOWS), f"add the new factories to FLOWS: {sorted(factories - set(FLOWS))}"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", FLOWS)
def test_perturbed_flows_round_trip_and_keep_finite_densities(name, seed):
    build, tolerance = FLOWS[name]
    flow = perturbed(build, seed)
    x = data(seed)
    with torch.no_grad():
        z, inverse_log_det = flow.inverse(x)
        back, forward_log_det = flow(z)
        log_prob = flow.log_prob(x)
    assert torch.isfinite(z).all() and torch.isfinite(log_prob).all()
    error = ((back - x).abs().max() / z.abs().max().clamp_min(1)).item()
    assert error <= tolerance, f"{name}: round trip error {error:.1e} (relative to max(1, |z|)) > {tolerance:.0e}"
    # the two directions' log-dets agree (measured: up to 2e-6 for IAF, 1e-7 for the others)
    assert (forward_log_det + inverse_log_det).abs().max() < 1e-5


def raw_numbers(n, bins, seed):
    """Raw spline parameters from moderate to absurd: N(0, 1) scaled by 1 .. 1e6, and +-1e6."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, 6, n, dtype=F64)[:, None]
    raw = torch.randn(n, parameter_count(bins), generator=generator, dtype=F64) * scales
    signs = torch.where(torch.rand(2, parameter_count(bins), generator=generator) < 0.5, -1.0, 1.0).to(F64)
    return torch.cat([raw, 1e6 * signs])


@pytest.mark.parametrize("bins", [2, 5, 16])
def test_knots_and_slopes_stay_within_the_documented_ranges(bins):
    bound = 3.0
    raw = raw_numbers(100, bins, seed=bins)
    xs, ys, ds = knots(raw, bound)
    widths, heights = xs.diff() / (2 * bound), ys.diff() / (2 * bound)
    ratio = torch.exp(torch.tensor(2 * SIZE_BOUND, dtype=F64)) * (1 + 1e-9)
    for sizes in (widths, heights):
        assert (sizes >= MIN_BIN * (1 - 1e-9)).all()
        assert (sizes.amax(-1) <= ratio * sizes.amin(-1)).all()  # any two bins within exp(2 SIZE_BOUND)
    slopes = heights / widths
    assert (slopes <= MAX_BIN_SLOPE * (1 + 1e-9)).all() and (slopes >= (1 - 1e-9) / MAX_BIN_SLOPE).all()
    assert (ds >= MIN_DERIVATIVE).all() and (ds <= MAX_DERIVATIVE).all()
    # f' on a fine grid, within min^2 / max and 2 max of its bin's s, d_k and d_{k+1}
    x = torch.linspace(-bound, bound, 1001, dtype=F64)[1:-1].expand(len(raw), -1)
    _, log_derivative = rational_quadratic(x, raw[:, None, :].expand(-1, x.shape[1], -1), bound)
    k = torch.searchsorted(xs.contiguous(), x.contiguous(), right=True).clamp(1, bins) - 1
    s, d0, d1 = slopes.gather(-1, k), ds.gather(-1, k), ds.gather(-1, k + 1)
    largest, smallest = torch.maximum(torch.maximum(s, d0), d1), torch.minimum(torch.minimum(s, d0), d1)
    slope = log_derivative.exp()
    assert torch.isfinite(log_derivative).all()
    assert (slope <= 2 * largest * (1 + 1e-9)).all() and (slope >= smallest**2 / largest * (1 - 1e-9)).all()
    assert slope.max() <= 2 * max(MAX_BIN_SLOPE, MAX_DERIVATIVE) * (1 + 1e-9)
    assert slope.min() >= min(1 / MAX_BIN_SLOPE, MIN_DERIVATIVE) ** 2 / max(MAX_BIN_SLOPE, MAX_DERIVATIVE) * (1 - 1e-9)


def test_the_bounds_are_smooth_and_saturate():
    """The knots are smooth in the raw numbers, unchanged in slope at 0 (where every layer starts);
    widths and heights barely move once their raw numbers are far beyond SIZE_BOUND, derivatives
    move at most as fast as their raw numbers (softplus' < 1) and stop at MAX_DERIVATIVE."""
    bins, bound = 5, 3.0
    sizes = slice(0, 2 * bins)  # raw widths and heights; the raw derivatives follow

    def jacobian(raw):
        """d(xs, ys) / d(raw widths, heights) and d(ds) / d(raw derivatives)."""
        full = torch.autograd.functional.jacobian(lambda r: torch.cat(knots(r[None], bound), -1)[0], raw)
        return full[: 2 * (bins + 1), sizes], full[2 * (bins + 1):, 2 * bins:]

    at_zero = jacobian(torch.zeros(parameter_count(bins), dtype=F64))
    generator = torch.Generator().manual_seed(0)
    small = 1e-6 * torch.randn(parameter_count(bins), generator=generator, dtype=F64)
    for near, at in zip(jacobian(small), at_zero):
        assert torch.allclose(near, at, atol=1e-5)
    assert at_zero[0].abs().max() > 0.5 and at_zero[1].diagonal(-1).min() > 0.6  # as before the bounds
    signs = torch.sign(torch.randn(parameter_count(bins), generator=generator, dtype=F64))
    assert jacobian(40 * signs)[0].abs().max() < 1e-8
    for scale in (1.0, 10.0, 100.0, 1e3):
        assert jacobian(scale * signs)[1].abs().max() <= 1
    assert jacobian(1e5 * signs)[1].abs().max() < 1e-8
