"""Tests of nflesson.data: sampling, exact densities, entropies and the energies U1..U4."""

import math

import numpy as np
import pytest
import torch

from nflesson import data

NAMES = data.names()
ENERGIES = ["u1", "u2", "u3", "u4"]
CURVES = ["moons", "spirals"]



def grid(bounds, n):
    """Midpoint grid over the box: points (n^dim, dim) in float64 and the volume of one cell."""
    axes = [torch.linspace(lo, hi, n + 1, dtype=torch.float64) for lo, hi in bounds]
    mids = [(a[1:] + a[:-1]) / 2 for a in axes]
    points = torch.stack(torch.meshgrid(*mids, indexing="ij"), -1).reshape(-1, len(bounds))
    return points, math.prod((hi - lo) / n for lo, hi in bounds)


def grid_integrals(target, box, n2d=200, n1d=4000):
    """Integrals over the box of the normalised density p and of -p log p (midpoint rule)."""
    points, cell = grid(box, n2d if target.dim == 2 else n1d)
    log_p = target.log_prob(points) - target.log_normalizer()
    p = torch.exp(log_p)
    mass = (p.sum() * cell).item()
    entropy = -(torch.where(p > 0, p * log_p, 0.0).sum() * cell).item()
    return mass, entropy


def test_names_cover_the_course_targets():
    expected = {"gaussian1d", "mixture1d", "gaussian2d", "moons", "eight_gaussians", "checkerboard"}
    expected |= {"rings", "spirals", "banana", "u1", "u2", "u3", "u4"}
    assert set(NAMES) == expected and len(NAMES) == len(expected)
    for name in NAMES:
        target = data.get(name)
        assert target.name == name and name in repr(target)
        assert len(target.bounds) == target.dim == (1 if name.endswith("1d") else 2)
        assert all(lo < hi for lo, hi in target.bounds)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown target 'moon'.*valid names: .*moons.*u4"):
        data.get("moon")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_shape_dtype_and_seed(name, dtype):
    target = data.get(name)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        a = target.sample(257, torch.Generator().manual_seed(1))
        b = target.sample(257, torch.Generator().manual_seed(1))
        c = target.sample(257, torch.Generator().manual_seed(2))
    finally:
        torch.set_default_dtype(old)
    assert a.shape == (257, target.dim) and a.dtype == dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert target.sample(1).shape == (1, target.dim)


@pytest.mark.parametrize("name", NAMES)
def test_density_integrates_to_one_over_bounds(name):
    target = data.get(name)
    mass, _ = grid_integrals(target, target.bounds)
    tol = 1e-12 if name == "checkerboard" else 1e-3  # the midpoint grid fits the board exactly
    assert abs(mass - 1) < tol


@pytest.mark.parametrize("name", NAMES)
def test_entropy_matches_grid_integration(name):
    target = data.get(name)
    box = target.bounds
    if name not in ENERGIES + ["checkerboard"]:  # include the thin tails outside the plotting box
        box = [(lo - 1, hi + 1) for lo, hi in box]
    _, entropy = grid_integrals(target, box)
    assert abs(entropy - target.entropy()) < 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_entropy_matches_nll_of_own_samples(name, float64_default):
    target = data.get(name)
    x = target.sample(200_000, torch.Generator().manual_seed(3))
    nll = target.log_normalizer() - target.log_prob(x)
    standard_error = nll.std().item() / math.sqrt(len(nll))
    assert abs(nll.mean().item() - target.entropy()) <= 4 * standard_error + 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_far_points(name):
    target = data.get(name)
    far = torch.tensor([[50.0, -50.0], [-40.0, 60.0], [55.0, 30.0]], dtype=torch.float64)
    far = far[:, : target.dim]
    for x in (far, far.float()):
        log_p = target.log_prob(x)
        assert log_p.shape == (3,) and log_p.dtype == x.dtype
        if name == "checkerboard":
            assert torch.all(log_p == -math.inf)
        else:
            assert torch.all(torch.isfinite(log_p)) and torch.all(log_p < -100)


@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_float64(name):
    target = data.get(name)
    x = target.sample(300, torch.Generator().manual_seed(4)).double()
    points, _ = grid(target.bounds, 15 if target.dim == 2 else 200)
    x = torch.cat([x, points])
    log_p64, log_p32 = target.log_prob(x), target.log_prob(x.float())
    assert log_p64.dtype == torch.float64 and log_p32.dtype == torch.float32
    assert log_p64.shape == (len(x),)
    if name == "checkerboard":  # no sample or grid point lies on an edge of the board
        assert torch.equal(log_p32.double(), log_p64.float().double())
    else:
        torch.testing.assert_close(log_p32.double(), log_p64, rtol=1e-5, atol=1e-4)


def test_gauss_legendre_against_40_digits():
    """Nodes and weights of 1,152 nodes (sum_and_product's rule) at the ends and the middle, against
    Newton's method on mpmath's Legendre polynomials with 40 digits."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    n = 1152
    x, w = data.gauss_legendre(n)
    for k in (0, 1, n // 2, n - 1):
        node = mpmath.mpf(x[k].item())  # one Newton step from a float64 node: 30 digits and more
        p, previous = mpmath.legendre(n, node), mpmath.legendre(n - 1, node)
        slope = n * (previous - node * p) / (1 - node**2)
        node -= p / slope
        weight = 2 / ((1 - node**2) * slope**2)
        assert abs(x[k].item() - node) < 1e-16 and abs(w[k].item() / weight - 1) < 1e-10


@pytest.mark.parametrize("n", [1, 2, 7, 128, 320])
def test_gauss_legendre_rule(n):
    x, w = data.gauss_legendre(n)
    assert x.dtype == w.dtype == torch.float64 and (x.diff() < 0).all() and (w > 0).all()
    # exact for polynomials of degree 2n - 1: the integral of x^k over [-1, 1] is 2 / (k + 1) for even k
    for k in range(2 * n):
        assert (w * x**k).sum().item() == pytest.approx(2 / (k + 1) if k % 2 == 0 else 0.0, abs=1e-13)
    if n <= 128:  # numpy's leggauss: an eigenvalue problem, slow for more nodes
        numpy_x, numpy_w = (np.ascontiguousarray(v[::-1]) for v in np.polynomial.legendre.leggauss(n))
        assert np.abs(x.numpy() - numpy_x).max() < 1e-15 and np.abs(w.numpy() / numpy_w - 1).max() < 1e-10


@pytest.mark.parametrize("name", CURVES)
def test_quadrature_accuracy(name):
    target = data.get(name)
    fine = type(target)(nodes=8 * target.nodes)
    points, _ = grid(target.bounds, 90)
    error = (target.log_prob(points) - fine.log_prob(points)).abs().max().item()
    assert error < 1e-4
    coarse = type(target)(nodes=target.nodes // 4)  # the test can tell a too coarse rule
    assert (coarse.log_prob(points) - fine.log_prob(points)).abs().max().item() > 1e-4


def test_gaussians_against_torch_distributions():
    x = torch.tensor([[5.3, 6.1], [2.0, 9.5], [-1.0, 4.0]], dtype=torch.float64)
    g = data.get("gaussian2d")
    cov = torch.tensor([[2.0, 0.7], [0.7, 1.0]], dtype=torch.float64)
    ref = torch.distributions.MultivariateNormal(torch.tensor([5.0, 7.0], dtype=torch.float64), cov)
    torch.testing.assert_close(g.log_prob(x), ref.log_prob(x))
    assert g.entropy() == pytest.approx(ref.entropy().item(), abs=1e-12)
    g1 = data.get("gaussian1d")
    ref1 = torch.distributions.Normal(1.0, 0.5)
    torch.testing.assert_close(g1.log_prob(x[:, :1]), ref1.log_prob(x[:, 0]).double())
    assert g1.entropy() == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 0.25), abs=1e-12)


def test_banana_and_checkerboard_closed_forms():
    banana = data.get("banana")
    b, s = banana.b, banana.s
    x = torch.tensor([[0.5, -0.2], [-2.0, 1.5], [3.0, -1.0]], dtype=torch.float64)
    normal = torch.distributions.Normal(0.0, 1.0)
    expected = normal.log_prob(x[:, 0]) + torch.distributions.Normal(b * (x[:, 0] ** 2 - 1), s).log_prob(x[:, 1])
    torch.testing.assert_close(banana.log_prob(x), expected)
    assert banana.entropy() == pytest.approx(math.log(2 * math.pi * math.e * s), abs=1e-12)
    board = data.get("checkerboard")
    x = torch.tensor([[-1.5, -1.5], [-0.5, -1.5], [0.5, 0.5], [1.9, -1.9], [2.1, 0.5], [0.5, 1.5]])
    expected = torch.full((6,), -math.log(8))
    expected[[1, 3, 4, 5]] = -math.inf
    assert torch.equal(board.log_prob(x), expected)
    assert board.log_prob(x.double())[0].item() == -math.log(8)
    assert board.entropy() == math.log(8)


def test_mixtures_against_an_independent_formula():
    x = np.array([[-2.3], [0.1], [1.4], [50.0]])
    means, stds, weights = np.array([-2.0, 1.5]), np.array([0.5, 0.7]), np.array([0.35, 0.65])
    terms = np.log(weights) - np.log(stds * math.sqrt(2 * math.pi)) - 0.5 * ((x - means) / stds) ** 2
    got = data.get("mixture1d").log_prob(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, np.logaddexp(terms[:, 0], terms[:, 1]), rtol=1e-12)
    x = np.array([[2.5, 0.1], [0.0, 0.0], [-1.2, 1.9], [50.0, -50.0]])
    angles = np.arange(8) * np.pi / 4
    centres = 2.5 * np.stack([np.cos(angles), np.sin(angles)], 1)
    sq = ((x[:, None, :] - centres) ** 2).sum(-1)
    terms = np.log(1 / 8) - np.log(2 * np.pi * 0.09) - sq / (2 * 0.09)
    expected = np.log(np.exp(terms - terms.max(1, keepdims=True)).sum(1)) + terms.max(1)
    got = data.get("eight_gaussians").log_prob(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_rings_closed_form_against_an_angular_average():
    rings = data.get("rings")
    x = torch.tensor([[0.0, 0.0], [0.7, -0.4], [1.5, 1.5], [-3.1, 0.2], [0.0, 5.0]], dtype=torch.float64)
    phi = torch.arange(4096, dtype=torch.float64) * 2 * math.pi / 4096  # periodic: spectral accuracy
    circle = torch.stack([torch.cos(phi), torch.sin(phi)], 1)
    density = torch.zeros(len(x), dtype=torch.float64)
    for radius, weight in zip(rings.radii, rings.weights):
        sq = ((x[:, None, :] - radius * circle) ** 2).sum(-1)
        density += weight * torch.exp(-sq / (2 * rings.sigma**2)).mean(1) / (2 * math.pi * rings.sigma**2)
    torch.testing.assert_close(rings.log_prob(x), torch.log(density), rtol=1e-10, atol=1e-10)


MOMENT_TARGETS = ["gaussian1d", "mixture1d", "gaussian2d", "banana", "eight_gaussians", "rings", "checkerboard"]


@pytest.mark.parametrize("name", MOMENT_TARGETS)
def test_sample_moments(name, float64_default):
    target = data.get(name)
    x = target.sample(100_000, torch.Generator().manual_seed(5))
    banana = data.get("banana")
    expected = {  # mean and second moment of the first coordinate, E|x|^2
        "gaussian1d": (1.0, 1.25, 1.25),
        "mixture1d": (0.275, 0.35 * 4.25 + 0.65 * 2.74, 0.35 * 4.25 + 0.65 * 2.74),
        "gaussian2d": (5.0, 27.0, 27.0 + 50.0),
        "banana": (0.0, 1.0, 1.0 + 2 * banana.b**2 + banana.s**2),
        "eight_gaussians": (0.0, 3.125 + 0.09, 6.25 + 0.18),
        "rings": (0.0, (1 + 8 + 27) / 12 + 0.0144, (1 + 8 + 27) / 6 + 0.0288),
        "checkerboard": (0.0, 4 / 3, 8 / 3),
    }[name]
    values = [x[:, 0], x[:, 0] ** 2, (x**2).sum(1)]
    for value, exact in zip(values, expected):
        assert abs(value.mean().item() - exact) < 5 * value.std().item() / math.sqrt(len(x))


@pytest.mark.parametrize(
    "name, z, energy",
    [
        ("u1", (1.0, 1.0), 2.461204413998356),
        ("u1", (-2.5, 0.5), 1.290850262266453),
        ("u2", (1.0, 0.5), 0.78125),  # w1 = 1: ((0.5 - 1) / 0.4)^2 / 2
        ("u2", (0.5, -1.0), 9.106917382415919),
        ("u3", (1.0, -1.8), 8 / 49),  # w1 = 1, w2 = 3: -log(exp(-32) + exp(-(0.2 / 0.35)^2 / 2))
        ("u3", (0.0, 0.0), -0.09701079000802837),
        ("u4", (1.0, 0.0), 0.9053885714287175),  # w1 = 1, w3 = 1.5
        ("u4", (2.5, -3.0), 1.9265618914428406),
    ],
)
def test_energies_at_hand_computed_points(name, z, energy):
    target = data.get(name)
    for dtype in (torch.float64, torch.float32):
        log_p = target.log_prob(torch.tensor([z], dtype=dtype))
        assert log_p.dtype == dtype
        assert log_p.item() == pytest.approx(-energy, rel=1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("name", ENERGIES)
def test_energy_rejection_bound_and_samples(name, float64_default):
    target = data.get(name)
    points, _ = grid(target.bounds, 400)
    top = target.log_prob(points).max().item()
    assert top <= target.log_max and target.log_max - top < 1e-3  # valid and tight
    x = target.sample(20_000, torch.Generator().manual_seed(6))
    assert x.abs().max() <= 4
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(7)).requires_grad_()
    (grad,) = torch.autograd.grad(target.log_prob(z).sum(), z)
    assert torch.all(torch.isfinite(grad)) and grad.abs().sum() > 0
    if name == "u2":  # z1 uniform on [-4, 4], z2 - w1(z1) ~ N(0, 0.4^2) (tails beyond 7.5 sd cut)
        assert abs(x[:, 0].mean().item()) < 5 * math.sqrt(64 / 12 / len(x))
        assert abs(x[:, 0].var().item() - 64 / 12) < 0.1
        residual = x[:, 1] - torch.sin(math.pi * x[:, 0] / 2)
        assert abs(residual.std().item() - 0.4) < 0.01


def test_energy_normalisers():
    assert data.get("u2").log_normalizer() == pytest.approx(math.log(8 * 0.4 * math.sqrt(2 * math.pi)), abs=1e-9)
    assert data.get("u3").log_normalizer() == pytest.approx(math.log(16 * 0.35 * math.sqrt(2 * math.pi)), abs=1e-6)
    for name in NAMES:
        if name not in ENERGIES:
            assert data.get(name).log_normalizer() == 0.0
    # U1 decays: its Z over the plane is its Z over the box up to 1e-6 (integrate over [-8, 8]^2).
    u1 = data.get("u1")
    points, cell = grid(((-8.0, 8.0), (-8.0, 8.0)), 400)
    plane = math.log(torch.exp(u1.log_prob(points)).sum().item() * cell)
    assert plane == pytest.approx(u1.log_normalizer(), abs=1e-6)


def test_bad_inputs():
    moons = data.get("moons")
    with pytest.raises(ValueError, match="shape"):
        moons.log_prob(torch.zeros(5))
    with pytest.raises(ValueError, match=r"3 columns.*dim = 2"):
        moons.log_prob(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"2 columns.*dim = 1"):
        data.get("mixture1d").log_prob(torch.zeros(5, 2))
    with pytest.raises(TypeError, match="floating"):
        data.get("u1").log_prob(torch.zeros(5, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        data.get("banana").log_prob([[0.0, 0.0]])
    for n, error in ((0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="n must be an integer >= 1"):
            data.get("gaussian1d").sample(n)
    with pytest.raises(ValueError, match="nodes must be an integer >= 1"):
        data.Spirals(nodes=0)
