"""The rational-quadratic spline in float64: monotone, continuous with a continuous derivative
at the knots and at the ends of the interval, the identity outside it, an inverse accurate to
1e-10 inside, on the knots and in the tails, finite for extreme parameters. (Round trips and
log-dets against autograd for the spline bijectors run with every other bijector in
test_bijectors.py; the documented bounds on knots and slopes for any raw numbers, and round trips
of whole flows with large random parameters, in test_extreme_parameters.py.)"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nflesson as nf
from nflesson.spline import MAX_DERIVATIVE, MIN_DERIVATIVE, knots, parameter_count, rational_quadratic

BOUND = 3.0
F64 = torch.float64


def random_raw(n, bins=6, scale=1.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, parameter_count(bins), generator=generator, dtype=F64) * scale


def spline(x, raw, inverse=False):
    return rational_quadratic(x, raw.expand(len(x), -1), BOUND, inverse=inverse)


def derivative(x, raw):
    x = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(spline(x, raw)[0].sum(), x)
    return grad


def test_knots_span_the_interval_and_start_as_the_identity():
    xs, ys, ds = knots(random_raw(4), BOUND)
    for edges in (xs, ys):
        assert (edges[:, 0] == -BOUND).all() and (edges[:, -1] == BOUND).all()
        assert (edges.diff() > 0).all()
    assert (ds[:, [0, -1]] == 1).all() and (ds > MIN_DERIVATIVE).all() and (ds < MAX_DERIVATIVE).all()
    x = torch.linspace(-5, 5, 101, dtype=F64)
    y, log_derivative = spline(x, torch.zeros(1, parameter_count(6), dtype=F64))
    assert torch.allclose(y, x, atol=1e-14) and log_derivative.abs().max() < 1e-14


@pytest.mark.parametrize("seed", range(5))
def test_monotone_continuous_with_continuous_derivative(seed):
    raw = random_raw(1, scale=1.5, seed=seed)
    x = torch.linspace(-BOUND - 1, BOUND + 1, 20_001, dtype=F64)
    y, log_derivative = spline(x, raw)
    assert (y.diff() > 0).all()
    assert torch.allclose(log_derivative.exp(), derivative(x, raw), rtol=1e-10)
    xs, ys, ds = knots(raw, BOUND)
    eps = 1e-10
    for knot, value, slope in zip(xs[0], ys[0], ds[0]):  # inner knots and both ends of the interval
        sides = torch.stack([knot - eps, knot + eps])
        y_sides, log_derivative_sides = spline(sides, raw)
        assert (y_sides - value).abs().max() < 1e-8  # continuous
        assert torch.allclose(log_derivative_sides.exp(), slope.expand(2), rtol=1e-4)  # f' = d_k from both sides
    ends = torch.tensor([-BOUND, BOUND], dtype=F64)
    assert torch.equal(spline(ends, raw)[0], ends) and torch.equal(spline(ends, raw)[1], torch.zeros(2, dtype=F64))
    tails = torch.tensor([-7.0, -BOUND - 1e-12, BOUND + 1e-12, 7.0], dtype=F64)
    assert torch.equal(spline(tails, raw)[0], tails) and (spline(tails, raw)[1] == 0).all()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.0, 2.0))
def test_inverse_is_accurate_to_1e10_inside_on_the_knots_and_in_the_tails(seed, scale):
    raw = random_raw(1, scale=scale, seed=seed)
    xs, ys, _ = knots(raw, BOUND)
    inside = torch.linspace(-BOUND, BOUND, 2001, dtype=F64)
    tails = torch.tensor([-50.0, -BOUND - 0.5, BOUND + 0.5, 50.0], dtype=F64)
    for x in (inside, xs[0], tails):
        y, log_derivative = spline(x, raw)
        back, inverse_log_derivative = spline(y, raw, inverse=True)
        assert (back - x).abs().max() < 1e-10
        assert (inverse_log_derivative + log_derivative).abs().max() < 1e-9
    back_at_knots = spline(ys[0], raw, inverse=True)[0]
    assert (back_at_knots - xs[0]).abs().max() < 1e-10


@pytest.mark.parametrize("value", [1e6, -1e6, 50.0, 0.0])
def test_extreme_parameters_give_finite_results(value):
    x = torch.linspace(-BOUND - 1, BOUND + 1, 1001, dtype=F64)
    for raw in (torch.full((1, parameter_count(6)), value, dtype=F64), random_raw(1, scale=abs(value) + 1.0)):
        y, log_derivative = spline(x, raw)
        z, inverse_log_derivative = spline(y, raw, inverse=True)
        assert torch.isfinite(y).all() and torch.isfinite(log_derivative).all()
        assert torch.isfinite(z).all() and torch.isfinite(inverse_log_derivative).all()
        assert (y.diff() >= 0).all()


def test_one_bin_is_the_identity_whatever_its_parameters():
    """One bin has fixed ends (-B, -B) and (B, B) and unit end derivatives: nothing is left to learn."""
    layer = nf.RationalQuadraticSpline(2, bins=1).double()
    with torch.no_grad():
        layer.raw.normal_()
    z = torch.randn(50, 2, dtype=F64)
    x, log_det = layer(z)
    assert layer.raw.shape == (2, 2) and torch.allclose(x, z) and log_det.abs().max() < 1e-12


def test_the_bijector_sums_one_spline_per_coordinate():
    layer = nf.RationalQuadraticSpline(3, bins=5, bound=2.0).double()
    with torch.no_grad():
        layer.raw.normal_()
    z = torch.randn(40, 3, dtype=F64) * 2
    x, log_det = layer(z)
    for j in range(3):
        xj, ldj = rational_quadratic(z[:, j], layer.raw[j].expand(40, -1), 2.0)
        assert torch.equal(x[:, j], xj)
    assert torch.allclose(log_det, sum(rational_quadratic(z[:, j], layer.raw[j].expand(40, -1), 2.0)[1]
                                        for j in range(3)))
    assert "bins=5, bound=2.0" in repr(layer)


@pytest.mark.parametrize("kwargs, message", [
    ({"bins": 0}, "bins must be an integer >= 1"),
    ({"bins": 2.5}, "bins must be an integer >= 1"),
    ({"bins": 1000}, "bins must be below 1000"),
    ({"bound": 0}, "bound must be > 0"),
    ({"bound": -1.0}, "bound must be > 0"),
    ({"dim": 0}, "dim must be an integer >= 1"),
])
def test_bad_arguments_say_what_is_wrong(kwargs, message):
    wrong_type = any(isinstance(v, float) and not v.is_integer() for v in kwargs.values())
    with pytest.raises(TypeError if wrong_type else ValueError, match=message):
        nf.RationalQuadraticSpline(**kwargs)


def test_nsf_factory_alternates_and_starts_as_the_identity():
    coupling = nf.flows.nsf(2)
    assert [type(b).__name__ for b in coupling.layers] == ["SplineCoupling"] * 4
    assert [b.mask.tolist() for b in coupling.layers][-2:] == [[False, True], [True, False]]
    autoregressive = nf.flows.nsf(3, layers=3, hidden=16, bins=5, autoregressive=True)
    assert [b.made.degrees.tolist() for b in autoregressive.layers] == [[1, 2, 3], [3, 2, 1], [1, 2, 3]]
    z = torch.randn(20, 2)
    for flow in (coupling, nf.flows.nsf(2, autoregressive=True)):
        x, log_det = flow(z)
        assert torch.allclose(x, z, atol=1e-6) and log_det.abs().max() < 1e-6


@pytest.mark.parametrize("constructor, message", [
    (lambda: nf.SplineCoupling(1), "needs dim >= 2"),
    (lambda: nf.SplineCoupling(2, bins=0), "bins must be"),
    (lambda: nf.SplineCoupling(2, bound=0.0), "bound must be > 0"),
    (lambda: nf.SplineAutoregressive(2, hidden=0), "hidden must be"),
    (lambda: nf.SplineAutoregressive(3, order=[0, 0, 1]), "order must be a permutation"),
    (lambda: nf.flows.nsf(2, layers=0), "layers must be"),
])
def test_spline_layers_refuse_bad_arguments(constructor, message):
    with pytest.raises(ValueError, match=message):
        constructor()
