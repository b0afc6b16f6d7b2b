"""The sum-and-product simulator (nflesson.conditional_targets.SumAndProduct), a conditional target
whose points are parameters theta and whose context is an observation x: its exact posterior
against Bayes' rule computed independently on fine grids, its symmetries, its exact posterior
draws, entropies, prior and simulator, seeds, argument checks, empty batches, NaN and inf; and
that fit and gap take it as they take the other conditional targets. Float64 where it matters."""

import math

import numpy as np
import pytest
import torch

import nflesson as nf
from nflesson import conditional_targets, data

F64 = torch.float64
SIM = data.get("sum_and_product")
SIGMA, BOX = 0.25, 3.0
TYPICAL = torch.tensor([[0.0, -1.0], [1.0, 0.2], [-1.5, 0.0], [0.0, 0.6], [2.19, 1.29], [0.5, -2.0]], dtype=F64)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def midpoint_grid(n, low=-BOX, high=BOX):
    """Midpoints of an n x n grid over the box (float64, (n^2, 2)) and the area of a cell."""
    axis = low + (high - low) * (torch.arange(n, dtype=F64) + 0.5) / n
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2), ((high - low) / n) ** 2


def unnormalised_log_posterior(theta, x):
    """log p(theta) + log p(x | theta) up to a constant, by torch.distributions (float64), inside the box."""
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    a, b = theta[:, 0], theta[:, 1]
    prior = normal.log_prob(a) + normal.log_prob(b)
    likelihood = torch.distributions.Normal(torch.stack([a + b, a * b], 1), SIGMA).log_prob(x.expand(len(theta), 2))
    return prior + likelihood.sum(1)



# --- registry and attributes ----------------------------------------------------------------------

def test_it_is_a_conditional_target_found_by_name_with_its_prior_and_simulator():
    assert "sum_and_product" in data.conditional_names() and "sum_and_product" not in data.names()
    assert SIM is conditional_targets.get("sum_and_product") and isinstance(SIM, data.ConditionalTarget)
    assert isinstance(SIM, data.SumAndProduct) and "sum_and_product" in repr(SIM)
    assert SIM.dim == 2 and SIM.context_size == 2 and SIM.bounds == ((-3.0, 3.0), (-3.0, 3.0))
    assert SIM.context_bounds == ((-3.5, 3.5), (-3.5, 3.5)) and SIM.log_normalizer() == 0.0
    snapshots = SIM.snapshot_contexts
    assert snapshots.shape == (4, 2) and snapshots.dtype == torch.get_default_dtype()
    torch.testing.assert_close(snapshots.double(), torch.tensor([[0, -1], [1, 0.2], [-1.5, 0], [0, 0.6]], dtype=F64))
    prior = SIM.prior
    assert isinstance(prior, torch.distributions.Distribution) and isinstance(prior, data.BoxedNormal)
    assert prior.event_shape == (2,) and prior.batch_shape == () and "BoxedNormal" in repr(prior)
    assert prior.support.check(torch.tensor([[3.0, -3.0], [0.0, 0.0]])).all()
    assert not prior.support.check(torch.tensor([[3.01, 0.0]])).any()
    assert callable(SIM.simulate)


def test_context_bounds_hold_98_percent_of_the_observations(float64_default):
    x = SIM.sample_contexts(40_000, seeded(0))
    inside = ((x >= -3.5) & (x <= 3.5)).all(1).double().mean().item()
    assert 0.97 < inside < 0.99
    typical = SIM.log_evidence(x[:2000])
    for context in SIM.snapshot_contexts:  # typical observations: none among the 5% least likely
        assert (typical < SIM.log_evidence(context)).double().mean() > 0.05


# --- the exact posterior --------------------------------------------------------------------------

@pytest.mark.parametrize("x", TYPICAL.tolist())
def test_the_posterior_integrates_to_one_and_is_bayes_rule(x):
    """On a 1000 x 1000 midpoint grid, independent of the target's rule in a: the density
    integrates to 1, and log_prob equals the unnormalised log posterior of torch.distributions
    minus the log of its own grid integral (the evidence by brute force)."""
    x = torch.tensor(x, dtype=F64)
    points, cell = midpoint_grid(1000)
    log_p = SIM.log_prob(points, x)
    assert abs(torch.exp(log_p).sum().item() * cell - 1) < 1e-9
    unnormalised = unnormalised_log_posterior(points, x)
    log_evidence = torch.logsumexp(unnormalised, 0) + math.log(cell) - 2 * math.log(math.erf(BOX / math.sqrt(2)))
    assert abs(SIM.log_evidence(x).item() - log_evidence.item()) < 1e-9
    rows = torch.randint(len(points), (500,), generator=seeded(1))
    torch.testing.assert_close(log_p[rows], unnormalised[rows] - torch.logsumexp(unnormalised, 0) - math.log(cell),
                               rtol=0, atol=1e-9)


def test_the_evidence_is_the_rule_of_a_much_finer_quadrature_also_far_out():
    """log p(x) by the target's 1152-node rule against a 24 000-node one, for observations up to 1000."""
    fine_nodes, fine_weights = conditional_targets._edge_graded_rule(-BOX, BOX, panels=1024, nodes=20, levels=40,
                                                                     ratio=0.5)
    generator = seeded(2)
    for scale, tolerance in ((12, 1e-11), (100, 1e-9), (1000, 1e-6)):
        x = (2 * torch.rand(200, 2, generator=generator, dtype=F64) - 1) * scale
        fine = torch.logsumexp(SIM._given_a(fine_nodes, x[:, :1], x[:, 1:])[0] + torch.log(fine_weights), 1)
        difference = (SIM.log_evidence(x) - fine).abs()
        assert (difference <= tolerance * (1 + fine.abs())).all(), (scale, difference.max())


def test_the_likelihood_and_prior_are_the_formulas():
    theta = torch.randn(50, 2, generator=seeded(3), dtype=F64) * 1.5
    x = torch.randn(50, 2, generator=seeded(4), dtype=F64) * 2
    expected = torch.distributions.Normal(torch.stack([theta.sum(1), theta.prod(1)], 1), SIGMA).log_prob(x).sum(1)
    torch.testing.assert_close(SIM.log_likelihood(theta, x), expected, rtol=1e-12, atol=1e-12)
    inside = (theta.abs() <= 3).all(1)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    prior = normal.log_prob(theta).sum(1) - 2 * math.log(math.erf(3 / math.sqrt(2)))
    log_prior = SIM.prior.log_prob(theta)
    torch.testing.assert_close(log_prior[inside], prior[inside], rtol=1e-12, atol=1e-12)
    assert (log_prior[~inside] == -math.inf).all() and (~inside).any()
    # Bayes' rule: prior + likelihood - evidence, point by point, with one context per row
    torch.testing.assert_close(SIM.log_prob(theta, x), log_prior + expected - SIM.log_evidence(x), rtol=0, atol=1e-9)


def test_symmetries_of_the_posterior():
    """Swapping a and b leaves x unchanged; (a, b) -> (-a, -b) maps x = (s, p) to (-s, p); and for
    s = 0 (with sigma^2 = 1/16) the posterior given p is that given 2 - p with b -> -b (in the
    rotated coordinates u = (a + b) / sqrt 2, v = (a - b) / sqrt 2 the two exponents swap u and v).
    Each pair of sides uses a different evidence, so this checks the quadrature too."""
    theta = (2 * torch.rand(400, 2, generator=seeded(5), dtype=F64) - 1) * 3
    swapped, negated, flipped = theta.flip(1), -theta, theta * torch.tensor([1.0, -1.0], dtype=F64)
    for x in TYPICAL:
        torch.testing.assert_close(SIM.log_prob(swapped, x), SIM.log_prob(theta, x), rtol=0, atol=1e-10)
        mirrored = x * torch.tensor([-1.0, 1.0], dtype=F64)
        torch.testing.assert_close(SIM.log_prob(negated, mirrored), SIM.log_prob(theta, x), rtol=0, atol=1e-9)
    for p in (-1.0, 0.6, 3.0):
        left = SIM.log_prob(theta, torch.tensor([0.0, p], dtype=F64))
        torch.testing.assert_close(SIM.log_prob(flipped, torch.tensor([0.0, 2 - p], dtype=F64)), left, rtol=0,
                                   atol=1e-9)
    evidences = SIM.log_evidence(torch.tensor([[0.0, 3.0], [0.0, -1.0]]))
    assert abs(evidences[0] - evidences[1]).item() > 10


def test_posterior_shapes_two_modes_a_ridge_and_a_blob():
    """The four snapshot observations: (0, -1) has its modes near (1, -1) and (-1, 1) with almost no
    mass between them; (0, 0.6) has one mode at the origin."""
    x = torch.tensor([0.0, -1.0], dtype=F64)
    modes, middle = torch.tensor([[0.97, -0.97], [-0.97, 0.97]], dtype=F64), torch.zeros(1, 2, dtype=F64)
    assert (SIM.log_prob(modes, x) > 0.5).all() and SIM.log_prob(middle, x).item() < -5
    points, cell = midpoint_grid(300)
    p = torch.exp(SIM.log_prob(points, torch.tensor([0.0, 0.6], dtype=F64)))
    assert torch.linalg.vector_norm(points[p.argmax()]) < 0.03


# --- posterior draws ------------------------------------------------------------------------------

def bin_masses(x, bins=15, sub=16):
    """The posterior mass of each cell of a bins x bins grid over the box, by a sub x sub midpoint rule in each."""
    points, cell = midpoint_grid(bins * sub)
    p = torch.exp(SIM.log_prob(points, x)).reshape(bins, sub, bins, sub) * cell
    return p.sum((1, 3))


@pytest.mark.parametrize("x", [[0.0, -1.0], [-1.5, 0.0], [2.19, 1.29]])
def test_posterior_draws_follow_the_density(x, float64_default):
    """A 15 x 15 histogram of 40 000 draws against the exact mass of each bin (no bin off by 5
    standard deviations, chi-square within its 5-sigma range), and the mean of -log p within 4
    standard errors of entropy_given(x)."""
    x = torch.tensor(x)
    n = 40_000
    draws = SIM.sample_given(x.expand(n, -1), seeded(6))
    assert draws.shape == (n, 2) and draws.dtype == F64 and (draws.abs() <= 3).all()
    edges = torch.linspace(-3, 3, 16, dtype=F64)
    counts = torch.histogramdd(draws, bins=[edges, edges]).hist
    expected = n * bin_masses(x)
    assert abs(expected.sum().item() - n) < 1e-6 * n
    used = expected > 5
    z = (counts - expected)[used] / expected[used].sqrt()
    assert z.abs().max() < 5 and counts[~used].sum() < 5 * expected[~used].sum() + 10
    chi2, dof = (z**2).sum().item(), used.sum().item() - 1
    assert abs(chi2 - dof) < 5 * math.sqrt(2 * dof), (chi2, dof)
    nll = -SIM.log_prob(draws, x)
    assert abs(nll.mean().item() - SIM.entropy_given(x).item()) < 4 * nll.std().item() / math.sqrt(n)
    # the swap symmetry: as many draws above the diagonal as below
    above = (draws[:, 1] > draws[:, 0]).double().mean().item()
    assert abs(above - 0.5) < 4 * 0.5 / math.sqrt(n)


def test_posterior_draws_of_a_far_observation_pile_up_in_the_corners(float64_default):
    """x = (0, -30): a b = -30 is out of reach, so the posterior sits in the corners (3, -3) and
    (-3, 3), each within a few 1e-3 of them (the sampler's tails and the truncated normal's
    reflection); the draws' mean of -log p matches the entropy."""
    x = torch.tensor([0.0, -30.0])
    n = 20_000
    draws = SIM.sample_given(x.expand(n, -1), seeded(7))
    assert (draws.abs() <= 3).all() and (draws.abs() > 2.9).all()
    assert abs((draws[:, 0] > 0).double().mean().item() - 0.5) < 0.02
    nll = -SIM.log_prob(draws, x)
    assert torch.isfinite(nll).all()
    assert abs(nll.mean().item() - SIM.entropy_given(x).item()) < 4 * nll.std().item() / math.sqrt(n)


def test_the_samplers_envelope_holds_wherever_the_posterior_has_mass():
    """The rejection sampler proposes a from the log-linear interpolant of g = p(a, x) between the
    rule's nodes and accepts with probability g / (interpolant e^margin): exact as long as g stays
    below the interpolant times e^margin (e^0.02). On 16 points inside every cell, for observations
    from the simulator and far beyond it, g stays below the interpolant times e^0.005."""
    t, width = SIM._cell_edges, SIM._cell_edges.diff()
    y = (torch.arange(16, dtype=F64) + 0.5) / 16
    inside = (t[:-1, None] + width[:, None] * y).flatten()
    generator = seeded(8)
    observations = torch.cat([SIM.sample_contexts(400, generator).double(),
                              (2 * torch.rand(300, 2, generator=generator, dtype=F64) - 1) * 12,
                              (2 * torch.rand(200, 2, generator=generator, dtype=F64) - 1) * 1000])
    worst = -math.inf
    for x in observations.split(100):
        log_g = SIM._given_a(t, x[:, :1], x[:, 1:])[0]
        exact = SIM._given_a(inside, x[:, :1], x[:, 1:])[0].reshape(len(x), -1, 16)
        interpolant = log_g[:, :-1, None] + log_g.diff(dim=1)[:, :, None] * y
        worst = max(worst, (exact - interpolant).max().item())
    assert SIM._envelope == 0.02 and worst < 0.005, worst


def test_truncated_normal_draws_are_exact_even_far_in_the_tail(float64_default):
    """b ~ N(m, 1 / P) on [-3, 3]: inside, against the exact CDF; with m = 50 (far above the box),
    3 - b is exponential with rate sqrt(P) (sqrt(P) (m - 3)) to first order."""
    u = (torch.arange(20_000, dtype=F64) + 0.5) / 20_000
    root = torch.tensor(4.0, dtype=F64)
    b = conditional_targets._truncated_normal(torch.tensor(0.5, dtype=F64), root, -3.0, 3.0, u)
    cdf = torch.special.ndtr((b - 0.5) * 4)
    low, high = torch.special.ndtr(torch.tensor(-14.0, dtype=F64)), torch.special.ndtr(torch.tensor(10.0, dtype=F64))
    torch.testing.assert_close((cdf - low) / (high - low), u, rtol=0, atol=1e-12)
    for mean in (50.0, -50.0, 400.0):
        b = conditional_targets._truncated_normal(torch.tensor(mean, dtype=F64), root, -3.0, 3.0, u)
        gap = (3 - b.abs())
        rate = 16 * (abs(mean) - 3)
        assert (gap >= 0).all() and torch.isfinite(b).all()
        assert abs(gap.mean().item() * rate - 1) < 0.01, (mean, gap.mean().item() * rate)
    z = conditional_targets._ndtri_of_log(torch.tensor([-700.0, -1e4, -1e6], dtype=F64))
    torch.testing.assert_close(torch.special.log_ndtr(z), torch.tensor([-700.0, -1e4, -1e6], dtype=F64), rtol=1e-13,
                               atol=0)


# --- entropies ------------------------------------------------------------------------------------

def test_entropy_given_matches_a_fine_grid():
    points, cell = midpoint_grid(1000)
    for x in TYPICAL:
        log_p = SIM.log_prob(points, x)
        p = torch.exp(log_p)
        grid_entropy = -(torch.where(p > 0, p * log_p, 0.0).sum() * cell).item()
        assert abs(grid_entropy - SIM.entropy_given(x).item()) < 1e-8, x


def gauss_legendre_panels(low, high, panels, nodes=8):
    xi, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(low, high, panels + 1)
    middle, half = (edges[:-1, None] + edges[1:, None]) / 2, (edges[1:, None] - edges[:-1, None]) / 2
    return (middle + half * xi).ravel(), (half * w).ravel()


def test_conditional_entropy_is_the_documented_value_by_quadrature_and_by_monte_carlo(float64_default):
    """H(Theta | X) = H(Theta) + H(X | Theta) - H(X), H(X | Theta) = log(2 pi e sigma^2), with
    H(X) = -int p(x) log p(x) dx over [-9, 9] x [-12, 12] (where the observations lie but for a
    mass below 1e-30) by a product Gauss-Legendre rule of its own (panels of width 2, 12 nodes): it
    agrees with the documented value (which panels of 0.25 gave) to 1e-7, and p(x) integrates to 1
    to 1e-8 there. E_x H(Theta | X = x) over observations and the mean of -log p(theta | x) over
    pairs agree with it within 4 standard errors."""
    h = SIM.conditional_entropy()
    assert isinstance(h, float) and h == pytest.approx(0.2152329800162, abs=1e-13)
    (x1, w1), (x2, w2) = gauss_legendre_panels(-9, 9, 9, 12), gauss_legendre_panels(-12, 12, 12, 12)
    points = torch.tensor(np.stack(np.meshgrid(x1, x2, indexing="ij"), -1).reshape(-1, 2))
    weights = torch.tensor(np.outer(w1, w2).ravel())
    log_p = SIM.log_evidence(points)
    assert abs((weights * torch.exp(log_p)).sum().item() - 1) < 1e-8
    h_x = -(weights * torch.exp(log_p) * log_p).sum().item()
    h_noise = math.log(2 * math.pi * math.e * SIGMA**2)
    assert abs(SIM.prior.entropy().item() + h_noise - h_x - h) < 1e-7
    assert abs(SIM._conditional_entropy_by_quadrature(panel=3.0, nodes=8) - h) < 1e-3  # the documented method, coarse
    theta, x = SIM.sample(5000, seeded(9))
    nll = -SIM.log_prob(theta, x)
    assert abs(nll.mean().item() - h) < 4 * nll.std().item() / math.sqrt(len(nll))
    given = SIM.entropy_given(x[:2000])
    assert abs(given.mean().item() - h) < 4 * given.std().item() / math.sqrt(len(given))
    # the prior's entropy, the first term
    a = 3.0
    z = math.erf(a / math.sqrt(2))
    one = 0.5 * math.log(2 * math.pi * math.e) + math.log(z) - a * math.exp(-a * a / 2) / math.sqrt(2 * math.pi) / z
    assert SIM.prior.entropy().item() == pytest.approx(2 * one, abs=1e-14)
    draws = SIM.prior.sample((100_000,), generator=seeded(10))
    nll = -SIM.prior.log_prob(draws)
    assert abs(nll.mean().item() - 2 * one) < 4 * nll.std().item() / math.sqrt(len(nll))


# --- the prior and the simulator: pairs from p(theta) p(x | theta) -------------------------------

def test_pairs_are_prior_then_simulator(float64_default):
    theta, x = SIM.sample(50_000, seeded(11))
    generator = seeded(11)
    by_hand = SIM.prior.sample((50_000,), generator=generator)
    assert torch.equal(by_hand, theta) and torch.equal(SIM.simulate(by_hand, generator=generator), x)
    torch.testing.assert_close(SIM.sample_contexts(50_000, seeded(11)), x, rtol=0, atol=0)
    # the prior: each coordinate a standard normal truncated to [-3, 3]
    assert (theta.abs() <= 3).all()
    n = len(theta)
    for column in theta.T:
        ordered = column.sort().values
        exact = (torch.special.ndtr(ordered) - torch.special.ndtr(torch.tensor(-3.0))) / math.erf(3 / math.sqrt(2))
        empirical = torch.arange(1, n + 1, dtype=F64) / n
        assert (exact - empirical).abs().max() < 1.63 / math.sqrt(n) * 1.3  # Kolmogorov-Smirnov, 1% level, margin
    torch.testing.assert_close(theta.var(0), SIM.prior.variance, rtol=0.02, atol=0)
    assert (theta.mean(0).abs() < 4 * 1 / math.sqrt(n)).all() and torch.equal(SIM.prior.mean, torch.zeros(2))
    assert abs((theta[:, 0] * theta[:, 1]).mean().item()) < 4 / math.sqrt(n)  # independent coordinates
    # the noise: x - (a + b, a b) ~ N(0, 0.25^2 I), independent of theta
    noise = x - torch.stack([theta.sum(1), theta.prod(1)], 1)
    assert (noise.mean(0).abs() < 4 * SIGMA / math.sqrt(n)).all()
    assert (abs(noise.std(0) / SIGMA - 1) < 0.01).all()
    correlations = torch.corrcoef(torch.stack([noise[:, 0], noise[:, 1], theta[:, 0], theta[:, 1]]))
    assert correlations[[0, 0, 0, 1, 1], [1, 2, 3, 2, 3]].abs().max().item() < 4 / math.sqrt(n)
    kurtosis = ((noise / SIGMA) ** 4).mean(0)
    assert (abs(kurtosis - 3) < 0.1).all()


def test_simulate_takes_any_finite_theta_and_keeps_its_dtype():
    for dtype in (torch.float32, F64):
        theta = torch.tensor([[0.5, 2.0], [10.0, -7.0]], dtype=dtype)
        x = SIM.simulate(theta, generator=seeded(12))
        assert x.dtype == dtype and x.shape == (2, 2)
        noise = x.double() - torch.tensor([[2.5, 1.0], [3.0, -70.0]], dtype=F64)
        assert (noise.abs() < 5 * SIGMA).all()
    assert torch.equal(SIM.simulate(theta, seeded(1)), SIM.simulate(theta, seeded(1)))
    assert not torch.equal(SIM.simulate(theta, seeded(1)), SIM.simulate(theta, seeded(2)))
    assert SIM.simulate(torch.zeros(0, 2)).shape == (0, 2)


def test_prior_sampling_shapes_dtypes_and_density():
    prior = SIM.prior
    assert prior.sample().shape == (2,) and prior.sample(5).shape == (5, 2) and prior.sample((3, 4)).shape == (3, 4, 2)
    assert prior.sample((0,)).shape == (0, 2)
    assert torch.equal(prior.sample((7,), generator=seeded(1)), prior.sample(7, generator=seeded(1)))
    nodes, weights = (torch.tensor(v) for v in gauss_legendre_panels(-3, 3, 6, 16))
    points = torch.stack(torch.meshgrid(nodes, nodes, indexing="ij"), -1).reshape(-1, 2)
    assert abs((torch.exp(prior.log_prob(points)) * torch.outer(weights, weights).flatten()).sum().item() - 1) < 1e-13
    assert prior.log_prob(torch.zeros(3, 5, 2, dtype=F64)).shape == (3, 5)
    values = torch.tensor([[0.0, 0.0], [3.0, 3.0], [3.0001, 0.0], [math.nan, 0.0], [math.inf, 0.0], [1e300, 1e300]])
    for dtype in (torch.float32, F64):
        log_p = prior.log_prob(values.to(dtype))
        assert log_p.dtype == dtype and torch.isfinite(log_p[:2]).all() and torch.isnan(log_p[3])
        assert log_p[2] == -math.inf and log_p[4] == -math.inf and log_p[5] == -math.inf
    variance = 1 - 2 * 3 * math.exp(-4.5) / math.sqrt(2 * math.pi) / math.erf(3 / math.sqrt(2))
    torch.testing.assert_close(prior.variance.double(), torch.full((2,), variance, dtype=F64))
    other = data.BoxedNormal(dim=3, scale=2.0, bound=1.0)
    assert other.sample(4).shape == (4, 3) and (other.sample(1000).abs() <= 1).all()
    assert 3 * math.log(2.0) - 0.1 < other.entropy().item() < 3 * math.log(2.0)  # nearly the uniform's on [-1, 1]^3


# --- seeds and dtypes -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_seeds_repeat_and_samples_follow_the_default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        pairs = [SIM.sample(100, seeded(s)) for s in (1, 1, 2)]
        prior = [SIM.prior.sample((50,), generator=seeded(s)) for s in (3, 3)]
        given = [SIM.sample_given(pairs[0][1], seeded(s)) for s in (4, 4, 5)]
    finally:
        torch.set_default_dtype(old)
    assert pairs[0][0].dtype == pairs[0][1].dtype == prior[0].dtype == given[0].dtype == dtype
    assert torch.equal(pairs[0][0], pairs[1][0]) and torch.equal(pairs[0][1], pairs[1][1])
    assert not torch.equal(pairs[0][0], pairs[2][0]) and torch.equal(prior[0], prior[1])
    assert torch.equal(given[0], given[1]) and not torch.equal(given[0], given[2])


def test_float32_theta_scores_like_float64():
    theta, x = SIM.sample(300, seeded(13))
    log_p64 = SIM.log_prob(theta.double(), x.double())
    log_p32 = SIM.log_prob(theta.float(), x.double())
    assert log_p32.dtype == torch.float32 and log_p64.dtype == F64
    torch.testing.assert_close(log_p32.double(), log_p64, rtol=1e-5, atol=1e-4)
    assert SIM.log_likelihood(theta.float(), x).dtype == torch.float32


# --- empty batches, NaN and inf -------------------------------------------------------------------

def test_empty_batches_give_empty_results():
    for dtype in (torch.float32, F64):
        empty = torch.zeros(0, 2, dtype=dtype)
        assert SIM.log_prob(empty, torch.zeros(0, 2)).shape == (0,)
        assert SIM.log_prob(empty, torch.zeros(2)).dtype == dtype
        assert SIM.log_likelihood(empty, torch.zeros(0, 2)).shape == (0,)
        assert SIM.simulate(empty).shape == (0, 2) and SIM.simulate(empty).dtype == dtype
        assert SIM.prior.log_prob(empty).shape == (0,)
    assert SIM.sample_given(torch.zeros(0, 2)).shape == (0, 2)
    assert SIM.entropy_given(torch.zeros(0, 2)).shape == (0,)
    evidence = SIM.log_evidence(torch.zeros(0, 2))
    assert evidence.shape == (0,) and evidence.dtype == F64


def test_nan_gives_nan_infinity_and_outside_the_box_give_minus_inf():
    x = torch.tensor([0.0, -1.0])
    rows = [[math.nan, 0.0], [math.inf, 0.0], [0.0, -math.inf], [3.5, 0.0], [1e300, -1e300], [3.4e38, 3.4e38],
            [1.0, -1.0]]
    for dtype in (torch.float32, F64):
        theta = torch.tensor(rows, dtype=dtype)
        log_p = SIM.log_prob(theta, x)
        assert log_p.dtype == dtype and torch.isnan(log_p[0]) and (log_p[1:6] == -math.inf).all()
        assert torch.isfinite(log_p[6])
        log_l = SIM.log_likelihood(theta, x)  # the likelihood is defined outside the prior's box too
        assert torch.isnan(log_l[0]) and (log_l[1:3] == -math.inf).all() and torch.isfinite(log_l[3])
        assert not torch.isnan(log_l[4:]).any()


# --- argument checks ------------------------------------------------------------------------------

def test_argument_checks_in_words():
    theta = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"context is an observation x = \(a \+ b, a b\) \+ noise.*\|x_i\| <= 1000"
                                         r".*got \[0.0, 2000.0\] in row 1"):
        SIM.log_prob(theta[:2], torch.tensor([[0.0, 1.0], [0.0, 2000.0]]))
    for call in (lambda: SIM.sample_given(torch.tensor([-1e4, 0.0])),
                 lambda: SIM.entropy_given(torch.tensor([1e6, 0.0])),
                 lambda: SIM.log_evidence(torch.tensor([[0.0, -1001.0]]))):
        with pytest.raises(ValueError, match=r"\|x_i\| <= 1000"):
            call()
    assert torch.isfinite(SIM.log_evidence(torch.tensor([1000.0, -1000.0])))  # 1000 itself is fine
    with pytest.raises(ValueError, match=r"needs a context"):
        SIM.log_evidence()
    with pytest.raises(ValueError, match=r"needs a context"):
        SIM.log_likelihood(theta)
    with pytest.raises(TypeError, match=r"theta must be a torch.Tensor"):
        SIM.simulate([[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"theta has 3 columns but this simulator \(sum_and_product\) has dim = 2"):
        SIM.simulate(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"theta must have shape \(batch, dim\).*reshape\(1, -1\)"):
        SIM.simulate(torch.zeros(2))
    with pytest.raises(TypeError, match=r"theta must have a floating dtype"):
        SIM.simulate(torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"theta must be float32 or float64, got torch.float16"):
        SIM.simulate(torch.zeros(3, 2, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"theta has NaN or inf in 1 of its 2 rows \(rows 1\)"):
        SIM.simulate(torch.tensor([[0.0, 1.0], [math.inf, 0.0]]))
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator"):
        SIM.simulate(theta, generator=1)
    with pytest.raises(TypeError, match=r"sample_shape must be a tuple of integers"):
        SIM.prior.sample(2.5)
    with pytest.raises(TypeError, match=r"sample_shape must be a tuple of integers"):
        SIM.prior.sample(True)
    with pytest.raises(TypeError, match=r"sample_shape must be a tuple of integers"):
        SIM.prior.sample("10")
    with pytest.raises(ValueError, match=r"sample_shape must hold integers >= 0, got \(-1,\)"):
        SIM.prior.sample((-1,))
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator"):
        SIM.prior.sample((3,), generator="seed")
    with pytest.raises(TypeError, match=r"value must be a torch.Tensor"):
        SIM.prior.log_prob([0.0, 0.0])
    with pytest.raises(TypeError, match=r"value must be float32 or float64"):
        SIM.prior.log_prob(torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"value must have shape \(\.\.\., 2\), got shape \(3, 3\)"):
        SIM.prior.log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"scale must be > 0, got -1.0"):
        data.BoxedNormal(scale=-1.0)
    with pytest.raises(TypeError, match=r"bound must be a number"):
        data.BoxedNormal(bound="3")
    with pytest.raises(ValueError, match=r"dim must be an integer >= 1"):
        data.BoxedNormal(dim=0)


def test_a_refused_call_changes_no_random_state():
    state = torch.random.get_rng_state()
    generator = seeded(0)
    generator_state = generator.get_state()
    for call in (lambda: SIM.simulate(torch.tensor([[math.nan, 0.0]]), generator),
                 lambda: SIM.sample_given(torch.tensor([[0.0, 5000.0]]), generator),
                 lambda: SIM.prior.sample((-2,), generator), lambda: SIM.sample(0, generator),
                 lambda: SIM.simulate(torch.zeros(2, 2), generator="x")):
        with pytest.raises((TypeError, ValueError)):
            call()
    assert torch.equal(torch.random.get_rng_state(), state) and torch.equal(generator.get_state(), generator_state)


# --- training and measuring a posterior on it ---------------------------------------------------

def test_fit_trains_a_posterior_on_it_and_gap_measures_it():
    """nf.fit draws fresh (theta, x) pairs from the target; nf.gap on held-out pairs gives E_x KL(p(theta
    | x) || q(theta | x)), which training lowers; the exact posterior itself is at 0."""
    test = SIM.sample(2000, seeded(14))
    torch.manual_seed(0)
    flow = nf.flows.nsf(2, layers=2, hidden=16, context=2)
    before = nf.gap(flow, SIM, test)
    history = nf.fit(flow, SIM, steps=150, batch_size=128, lr=5e-3, progress=False, frames=2)
    after = nf.gap(flow, SIM, test)
    assert len(history.losses) == 150 and after.nats < before.nats - 1 and after.nats > -5 * after.standard_error
    exact = nf.gap(lambda theta, x: SIM.log_prob(theta, x), SIM, test)
    assert exact.nats == 0 and exact.standard_error == 0
    # the loss estimates the conditional cross-entropy, whose floor is H(Theta | X) = 0.215 nats
    assert min(history.losses) > SIM.conditional_entropy() - 0.5
