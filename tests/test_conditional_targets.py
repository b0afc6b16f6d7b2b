"""Conditional targets p(x | c) (nflesson.conditional_targets), in float64 where it matters: the
registry, densities that integrate to 1 for each context, samples that agree with the densities,
entropies H(X | C = c) and H(X | C) against independent quadrature and Monte Carlo, seeds, argument
checks in words, empty batches, NaN and inf."""

import math

import numpy as np
import pytest
import torch

from nflesson import conditional_targets, data, targets

NAMES = ["ring_by_radius", "rotated_moons", "gaussians_by_class", "sum_and_product"]
F64 = torch.float64
ONE_HOT = torch.eye(8, dtype=F64)
# Three contexts per target, for the grid and sampling checks.
CONTEXTS = {
    "ring_by_radius": torch.tensor([[1.0], [2.0], [3.0]], dtype=F64),
    "rotated_moons": torch.tensor([[0.0], [math.pi / 3], [0.8 * math.pi]], dtype=F64),
    "gaussians_by_class": ONE_HOT[[0, 3, 7]],
    "sum_and_product": torch.tensor([[0.0, -1.0], [1.0, 0.2], [-1.5, 0.0]], dtype=F64),
}
H_RING = 1.6004699770079767  # reported in the module's docstring; checked below
H_CLASS = 1 + math.log(2 * math.pi) + math.log(0.25)



def seeded(seed):
    return torch.Generator().manual_seed(seed)


def grid(bounds, n):
    """Midpoint grid over the box: points (n^2, 2) in float64 and the area of one cell."""
    axes = [torch.linspace(lo, hi, n + 1, dtype=F64) for lo, hi in bounds]
    mids = [(a[1:] + a[:-1]) / 2 for a in axes]
    points = torch.stack(torch.meshgrid(*mids, indexing="ij"), -1).reshape(-1, 2)
    return points, math.prod((hi - lo) / n for lo, hi in bounds)


def rotate(x, angle):
    cos, sin = math.cos(angle), math.sin(angle)
    return torch.stack([cos * x[:, 0] - sin * x[:, 1], sin * x[:, 0] + cos * x[:, 1]], 1)


# --- registry and attributes --------------------------------------------------------------------

def test_registry_get_finds_them_and_names_stays_unconditional():
    assert data.conditional_names() == conditional_targets.conditional_names() == NAMES
    assert not set(NAMES) & set(data.names())
    for name in NAMES:
        target = data.get(name)
        assert target is conditional_targets.get(name) and target.name == name and name in repr(target)
        assert isinstance(target, data.ConditionalTarget)
    assert data.get("moons") is targets.get("moons")
    with pytest.raises(ValueError, match=r"unknown target 'ring'.*valid names: .*u4; conditional targets: "
                                         r"ring_by_radius, rotated_moons, gaussians_by_class"):
        data.get("ring")
    with pytest.raises(TypeError, match=r"must be a string, one of gaussian1d, .*u4; got int; conditional targets"):
        data.get(3)
    with pytest.raises(ValueError, match=r"unknown conditional target 'moons'; valid names: ring_by_radius"):
        conditional_targets.get("moons")
    with pytest.raises(TypeError, match=r"conditional target's name must be a string"):
        conditional_targets.get(None)


@pytest.mark.parametrize("name", NAMES)
def test_attributes_and_snapshot_contexts(name, float64_default):
    target = data.get(name)
    k = {"ring_by_radius": 1, "rotated_moons": 1, "gaussians_by_class": 8, "sum_and_product": 2}[name]
    assert target.dim == 2 and target.context_size == k
    assert len(target.bounds) == 2 and len(target.context_bounds) == k
    assert all(lo < hi for lo, hi in target.bounds + target.context_bounds)
    snapshots = target.snapshot_contexts
    assert snapshots.shape[1] == k and 3 <= len(snapshots) <= 5 and snapshots.dtype == F64
    snapshots[0] = 99.0  # a fresh copy each time: changing it changes nothing
    snapshots = target.snapshot_contexts
    if k == 1:
        (low, high), = target.context_bounds
        assert (snapshots.diff(dim=0) > 0).all() and snapshots[0, 0] == low and snapshots[-1, 0] == high
    elif name == "gaussians_by_class":
        labels = target.labels(snapshots)
        assert (labels.diff() > 0).all() and len(set(labels.tolist())) == len(snapshots)
    assert torch.isfinite(target.log_prob(torch.zeros(len(snapshots), 2) + 0.3, snapshots)).all()
    assert target.log_normalizer() == 0.0


def test_snapshot_contexts_follow_the_default_dtype():
    assert data.get("ring_by_radius").snapshot_contexts.dtype == torch.get_default_dtype()


# --- densities ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_each_density_integrates_to_one_and_its_entropy_matches_the_grid(name):
    target = data.get(name)
    box = [(lo - 1, hi + 1) for lo, hi in target.bounds]  # the thin tails outside the plotting box
    points, cell = grid(box, 300)
    for c in CONTEXTS[name]:
        log_p = target.log_prob(points, c)
        p = torch.exp(log_p)
        assert abs((p.sum() * cell).item() - 1) < 1e-4, (name, c)
        entropy = -(torch.where(p > 0, p * log_p, 0.0).sum() * cell).item()
        assert abs(entropy - target.entropy_given(c).item()) < 2e-3, (name, c, entropy)


def test_ring_density_is_the_polar_formula():
    ring = data.get("ring_by_radius")
    x = torch.tensor([[1.0, 0.5], [-0.2, 2.9], [0.0, -0.7], [3.0, 3.0]], dtype=F64)
    c = torch.tensor([[1.0], [2.5], [0.05], [3.0]], dtype=F64)
    r, sigma = torch.linalg.vector_norm(x, dim=1).numpy(), 0.1
    mean = c[:, 0].numpy()
    phi = np.exp(-0.5 * ((r - mean) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    truncation = np.array([0.5 * math.erfc(-m / sigma / math.sqrt(2)) for m in mean])
    expected = np.log(phi / truncation / (2 * math.pi * r))
    np.testing.assert_allclose(ring.log_prob(x, c).numpy(), expected, rtol=1e-12)
    # at the origin, the limit of p_r(r) / (2 pi r): +inf
    assert ring.log_prob(torch.zeros(1, 2, dtype=F64), torch.ones(1, dtype=F64)).item() == math.inf


def test_rotated_moons_is_the_moons_density_rotated_back_and_periodic_in_the_angle():
    target, moons = data.get("rotated_moons"), targets.get("moons")
    x = torch.randn(50, 2, generator=seeded(1), dtype=F64) * 2
    for angle in (0.0, 0.7, math.pi, -2.0):
        expected = moons.log_prob(rotate(x, -angle))
        torch.testing.assert_close(target.log_prob(x, torch.tensor([angle], dtype=F64)), expected, rtol=1e-12,
                                   atol=1e-12)
        shifted = torch.tensor([angle + 2 * math.pi], dtype=F64)
        torch.testing.assert_close(target.log_prob(x, shifted), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(target.log_prob(x, torch.zeros(1, dtype=F64)), moons.log_prob(x), rtol=0, atol=0)


def test_gaussians_by_class_density_is_the_normal_of_its_class():
    target = data.get("gaussians_by_class")
    x = torch.randn(40, 2, generator=seeded(2), dtype=F64) * 4
    y = torch.arange(40) % 8
    angle = y.to(F64) * math.pi / 4
    mean = 4 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    normal = torch.distributions.Normal(mean, 0.5)
    torch.testing.assert_close(target.log_prob(x, target.one_hot(y).double()), normal.log_prob(x).sum(1),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_float32_points_score_like_float64_and_keep_their_dtype(name):
    target = data.get(name)
    x, c = target.sample(300, seeded(4))
    log_p64 = target.log_prob(x.double(), c.double())
    log_p32 = target.log_prob(x.float(), c.double())
    assert log_p64.dtype == F64 and log_p32.dtype == torch.float32 and log_p64.shape == (300,)
    torch.testing.assert_close(log_p32.double(), log_p64, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_nan_in_nan_out_minus_inf_at_infinity_and_no_nan_for_huge_points(name):
    target = data.get(name)
    c = target.snapshot_contexts[1]
    nan, inf = math.nan, math.inf
    rows = [[nan, nan], [nan, 0.0], [inf, inf], [-inf, 0.0], [0.0, -inf], [0.5, 0.5]]
    for dtype in (torch.float32, F64):
        log_p = target.log_prob(torch.tensor(rows, dtype=dtype), c)
        assert log_p.dtype == dtype and torch.isnan(log_p[:2]).all() and (log_p[2:5] == -inf).all()
        assert torch.isfinite(log_p[5])
    for dtype, big in ((torch.float32, 3e38), (F64, 1.7e308), (F64, 1e160)):
        values = [0.5, big, -big]
        x = torch.tensor([[a, b] for a in values for b in values], dtype=dtype)
        log_p = target.log_prob(x, c)
        assert not torch.isnan(log_p).any() and (log_p[1:] < -1e3).all(), (dtype, big, log_p)


@pytest.mark.parametrize("name", NAMES)
def test_empty_batches_give_empty_results(name):
    target = data.get(name)
    k = target.context_size
    for dtype in (torch.float32, F64):
        empty = torch.zeros(0, 2, dtype=dtype)
        assert target.log_prob(empty, torch.zeros(0, k)).shape == (0,)
        assert target.log_prob(empty, target.snapshot_contexts[0]).dtype == dtype
        assert target.log_prob(empty, target.snapshot_contexts[0]).shape == (0,)
    entropies = target.entropy_given(torch.zeros(0, k))
    assert entropies.shape == (0,) and entropies.dtype == F64
    assert target.sample_given(torch.zeros(0, k)).shape == (0, 2)


# --- sampling -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_samples_of_each_context_agree_with_its_density_and_entropy(name, float64_default):
    """For 3 contexts: a 10 x 10 histogram of 20 000 draws against the density's mass per bin (no bin
    off by more than 5 standard deviations), and the mean of -log p(x | c) within 3 standard errors
    of entropy_given(c)."""
    target = data.get(name)
    n = 20_000
    edges = [torch.linspace(lo, hi, 11, dtype=F64) for lo, hi in target.bounds]
    for i, c in enumerate(CONTEXTS[name]):
        x = target.sample_given(c.expand(n, -1), seeded(10 + i))
        assert x.shape == (n, 2) and x.dtype == F64
        counts = torch.histogramdd(x, bins=edges).hist.flatten()
        expected = torch.zeros(100, dtype=F64)
        for b in range(100):  # the mass of each bin, by a 20 x 20 midpoint grid inside it
            (x0, x1), (y0, y1) = [(e[j], e[j + 1]) for e, j in zip(edges, (b // 10, b % 10))]
            points, cell = grid(((x0.item(), x1.item()), (y0.item(), y1.item())), 20)
            expected[b] = n * torch.exp(target.log_prob(points, c)).sum() * cell
        z = (counts - expected) / torch.sqrt(expected + 1)
        assert z.abs().max() < 5, (name, c, z.abs().max())
        nll = -target.log_prob(x, c)
        error = nll.std().item() / math.sqrt(n)
        assert abs(nll.mean().item() - target.entropy_given(c).item()) < 3 * error, (name, c)


def test_ring_samples_have_the_right_radius_and_a_uniform_angle(float64_default):
    ring = data.get("ring_by_radius")
    for c in (0.05, 1.0, 2.5):  # 0.05: a heavily truncated radius, still drawn exactly
        x = ring.sample_given(torch.full((40_000, 1), c), seeded(3))
        r, angle = torch.linalg.vector_norm(x, dim=1), torch.atan2(x[:, 1], x[:, 0])
        assert (r > 0).all()
        a = c / 0.1  # the truncated normal's mean: c + sigma phi(a) / Phi(a)
        mean = c + 0.1 * math.exp(-a * a / 2) / math.sqrt(2 * math.pi) / (0.5 * math.erfc(-a / math.sqrt(2)))
        assert abs(r.mean().item() - mean) < 4 * r.std().item() / 200
        assert abs(torch.cos(angle).mean().item()) < 4 / math.sqrt(2 * 40_000)
        assert abs(torch.sin(angle).mean().item()) < 4 / math.sqrt(2 * 40_000)


def test_contexts_are_drawn_from_their_ranges(float64_default):
    c = data.get("ring_by_radius").sample_contexts(20_000, seeded(1))
    assert c.shape == (20_000, 1) and c.min() >= 1 and c.max() <= 3 and abs(c.mean().item() - 2) < 0.02
    c = data.get("rotated_moons").sample_contexts(20_000, seeded(1))
    assert c.min() >= 0 and c.max() <= math.pi and abs(c.mean().item() - math.pi / 2) < 0.03
    target = data.get("gaussians_by_class")
    c = target.sample_contexts(16_000, seeded(1))
    assert c.shape == (16_000, 8) and ((c == 0) | (c == 1)).all() and (c.sum(1) == 1).all()
    assert (abs(c.mean(0) - 1 / 8) < 0.015).all()
    x, c = target.sample(16_000, seeded(2))
    for y in (0, 5):  # the points of each class sit around their own centre
        mine = x[target.labels(c) == y]
        centre = torch.tensor([4 * math.cos(y * math.pi / 4), 4 * math.sin(y * math.pi / 4)])
        assert (abs(mine.mean(0) - centre) < 0.05).all() and (abs(mine.var(0) - 0.25) < 0.03).all()


# --- entropies ----------------------------------------------------------------------------------

def ring_entropy_by_fine_grid(c, n=1_000_000):
    """H(X | C = c) of the ring, independently: H(r) + log(2 pi) + E[log r] with r = s^2 (which tames
    the log r singularity at 0) by a midpoint rule of n points in s, in numpy."""
    sigma = 0.1
    s_max = math.sqrt(c + 14 * sigma)
    s = (np.arange(n) + 0.5) * s_max / n
    r = s**2
    log_z = math.log(0.5 * math.erfc(-c / sigma / math.sqrt(2)))
    log_p = -0.5 * ((r - c) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi)) - log_z
    weight = np.exp(log_p) * 2 * s * s_max / n
    return float((weight * (-log_p + math.log(2 * math.pi) + np.log(r))).sum())


@pytest.mark.parametrize("c", [1.0, 1.15, 1.25, 2.0, 3.0, 0.3, 0.05])
def test_ring_entropy_given_matches_an_independent_fine_grid(c):
    ring = data.get("ring_by_radius")
    assert abs(ring.entropy_given(torch.tensor([c], dtype=F64)).item() - ring_entropy_by_fine_grid(c)) < 1e-10


def test_ring_entropy_given_is_smooth_and_close_to_its_series_for_large_radii():
    ring = data.get("ring_by_radius")
    c = torch.tensor([[10.0], [1e3], [1e6], [1e100]], dtype=F64)
    sigma2 = 0.01  # E[log(c + sigma z)] = log c - sigma^2 / (2 c^2) - 3 sigma^4 / (4 c^4) - ...
    series = 0.5 * math.log(2 * math.pi * math.e * sigma2) + math.log(2 * math.pi) + torch.log(c[:, 0])
    series = series - sigma2 / (2 * c[:, 0] ** 2) - 3 * sigma2**2 / (4 * c[:, 0] ** 4)
    torch.testing.assert_close(ring.entropy_given(c), series, rtol=0, atol=1e-9)
    # across 12 sigma, where the rule switches from the truncated form to log1p, nothing jumps: the
    # second differences of 5 equally spaced radii around 1.2 agree, and the slope is
    # d/dc (log c - sigma^2 / (2 c^2) - 3 sigma^4 / (4 c^4)) = 1 / c + sigma^2 / c^3 + 3 sigma^4 / c^5
    around = 1.2 + 1e-5 * torch.arange(-2, 3, dtype=F64)[:, None]
    steps = ring.entropy_given(around).diff()
    assert steps.diff().max() - steps.diff().min() < 1e-13
    assert abs(steps[1].item() / 1e-5 - (1 / 1.2 + sigma2 / 1.2**3 + 3 * sigma2**2 / 1.2**5)) < 2e-5


def test_conditional_entropies_are_the_documented_values():
    ring = data.get("ring_by_radius")
    assert abs(ring.conditional_entropy() - H_RING) < 1e-12
    assert abs(ring._average_entropy(96) - ring.conditional_entropy()) < 1e-13  # the rule in c has converged
    # an independent check: the mean of entropy_given over a fine midpoint grid of c in [1, 3]
    c = 1 + 2 * (torch.arange(4000, dtype=F64) + 0.5) / 4000
    assert abs(ring.entropy_given(c[:, None]).mean().item() - H_RING) < 1e-8
    assert data.get("rotated_moons").conditional_entropy() == targets.get("moons").entropy()
    assert data.get("gaussians_by_class").conditional_entropy() == pytest.approx(H_CLASS, abs=1e-15)
    assert math.log(2 * math.pi * math.e * 0.25) == pytest.approx(H_CLASS, abs=1e-15)
    for name in NAMES:
        target = data.get(name)
        assert isinstance(target.conditional_entropy(), float)
        h = target.entropy_given(target.snapshot_contexts)
        assert h.dtype == F64 and h.shape == (len(target.snapshot_contexts),)
    torch.testing.assert_close(data.get("rotated_moons").entropy_given(torch.rand(7, 1)),
                               torch.full((7,), targets.get("moons").entropy(), dtype=F64))
    torch.testing.assert_close(data.get("gaussians_by_class").entropy_given(ONE_HOT),
                               torch.full((8,), H_CLASS, dtype=F64))


@pytest.mark.parametrize("name", NAMES)
def test_conditional_entropy_matches_monte_carlo_of_sampled_pairs(name, float64_default):
    target = data.get(name)
    x, c = target.sample(60_000, seeded(7))
    nll = -target.log_prob(x, c)
    error = nll.std().item() / math.sqrt(len(nll))
    assert abs(nll.mean().item() - target.conditional_entropy()) < 3 * error
    # and E_c H(X | C = c) over the sampled contexts agrees too
    assert abs(target.entropy_given(c[:5000]).mean().item() - target.conditional_entropy()) < 0.02


# --- seeds and dtypes ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_seeds_repeat_and_samples_have_the_default_dtype(name, dtype):
    target = data.get(name)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        (xa, ca), (xb, cb), (xc, cc) = (target.sample(257, seeded(s)) for s in (1, 1, 2))
        contexts = [target.sample_contexts(100, seeded(s)) for s in (3, 3, 4)]
        given = [target.sample_given(ca, seeded(s)) for s in (5, 5, 6)]
    finally:
        torch.set_default_dtype(old)
    assert xa.shape == (257, 2) and ca.shape == (257, target.context_size)
    assert xa.dtype == ca.dtype == contexts[0].dtype == given[0].dtype == dtype
    assert torch.equal(xa, xb) and torch.equal(ca, cb) and not torch.equal(xa, xc)
    assert torch.equal(contexts[0], contexts[1]) and not torch.equal(contexts[0], contexts[2])
    assert torch.equal(given[0], given[1]) and not torch.equal(given[0], given[2]) and given[0].shape == (257, 2)
    assert target.sample(1)[0].shape == (1, 2)
    assert target.sample_given(target.snapshot_contexts[0]).shape == (1, 2)  # a (k,) context: one point


# --- argument checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_argument_checks_in_words(name):
    target = data.get(name)
    k = target.context_size
    x, c = torch.zeros(3, 2), target.snapshot_contexts[:3]
    with pytest.raises(ValueError, match=r"needs a context: pass context, a tensor of shape \(batch, \d\)"):
        target.log_prob(x)
    with pytest.raises(ValueError, match=r"needs a context"):
        target.sample_given()
    with pytest.raises(ValueError, match=r"needs a context"):
        target.entropy_given(None)
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        target.log_prob([[0.0, 0.0]], c[0])
    with pytest.raises(ValueError, match=r"x must have shape \(batch, dim\)"):
        target.log_prob(torch.zeros(2), c[0])
    with pytest.raises(ValueError, match=r"x has 3 columns but this conditional target .* has dim = 2"):
        target.log_prob(torch.zeros(3, 3), c)
    with pytest.raises(TypeError, match=r"x must be float32 or float64, got torch.float16"):
        target.log_prob(x.half(), c)
    with pytest.raises(TypeError, match=r"context must be a torch.Tensor of shape \(batch, \d\) or \(\d\,\), got list"):
        target.log_prob(x, c.tolist())
    with pytest.raises(TypeError, match=r"context must have a floating dtype .* got torch.int64"):
        target.log_prob(x, c.long())
    with pytest.raises(TypeError, match=r"context must be float32 or float64, got torch.bfloat16"):
        target.entropy_given(c.bfloat16())
    with pytest.raises(ValueError, match=rf"context has {k + 1} columns but .* contexts of width k = {k}"):
        target.log_prob(x, torch.zeros(3, k + 1))
    with pytest.raises(ValueError, match=rf"context of shape \({k + 2},\) is one context of width {k + 2}"):
        target.entropy_given(torch.zeros(k + 2))
    with pytest.raises(ValueError, match=r"context must have shape \(batch, dim\)"):
        target.sample_given(c[None])
    with pytest.raises(ValueError, match=r"context has 2 rows for 3 points: give one context per row of x"):
        target.log_prob(x, c[:2])
    bad = c.clone()
    bad[1, 0] = math.nan
    with pytest.raises(ValueError, match=r"context has NaN or inf in 1 of its 3 rows \(rows 1\)"):
        target.log_prob(x, bad)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 0"):
        target.sample(0)
    with pytest.raises(TypeError, match=r"n must be an integer >= 1, got float"):
        target.sample_contexts(2.0)
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator"):
        target.sample_given(c, generator=0)


def test_a_scalar_context_batch_is_told_how_to_reshape():
    ring = data.get("ring_by_radius")
    with pytest.raises(ValueError, match=r"shape \(3,\) is one context of width 3.*use context.reshape\(-1, 1\)"):
        ring.log_prob(torch.ones(3, 2), torch.ones(3))
    assert ring.log_prob(torch.ones(3, 2), torch.ones(1)).shape == (3,)  # (1,): one context for every row


def test_contexts_that_mean_nothing_are_refused():
    ring, classes = data.get("ring_by_radius"), data.get("gaussians_by_class")
    for radius in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"context is the radius of the ring and must be > 0 .* in \[1, 3\]\); "
                                             r"got -?\d"):
            ring.log_prob(torch.ones(2, 2), torch.tensor([[2.0], [radius]]))
        with pytest.raises(ValueError, match=r"must be > 0"):
            ring.sample_given(torch.tensor([[radius]]))
    # a radius outside [1, 3] but > 0 is scored exactly (extrapolation)
    assert torch.isfinite(ring.log_prob(torch.ones(2, 2), torch.tensor([[0.5], [5.0]]))).all()
    not_one_hot = [ONE_HOT[0] * 0.5, ONE_HOT[0] + ONE_HOT[1], torch.zeros(8, dtype=F64), ONE_HOT[0] * 2,
                   torch.full((8,), 1 / 8, dtype=F64), ONE_HOT[2] - ONE_HOT[3] + ONE_HOT[4]]
    for context in not_one_hot:
        for call in (lambda: classes.log_prob(torch.zeros(2, 2), torch.stack([ONE_HOT[5], context])),
                     lambda: classes.sample_given(context), lambda: classes.entropy_given(context)):
            with pytest.raises(ValueError, match=r"context must be one-hot \(every entry 0 or 1, exactly one 1"):
                call()


def test_one_hot_and_labels():
    classes = data.get("gaussians_by_class")
    assert torch.equal(classes.one_hot([3, 0]), torch.eye(8)[[3, 0]])
    assert torch.equal(classes.one_hot(torch.tensor([7])), torch.eye(8)[[7]])
    assert torch.equal(classes.labels(classes.one_hot(range(8))), torch.arange(8))
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.7, got \[8\]"):
        classes.one_hot([8])
    with pytest.raises(TypeError, match=r"labels must be integers in 0\.\.7"):
        classes.one_hot([1.5])
    with pytest.raises(TypeError, match=r"labels must be integers in 0\.\.7, got a tensor of torch.float32"):
        classes.one_hot(torch.tensor([1.0]))
    with pytest.raises(TypeError, match=r"labels must be a sequence of integers"):
        classes.one_hot("ab")


def test_a_refused_call_changes_no_random_state():
    target = data.get("ring_by_radius")
    state = torch.random.get_rng_state()
    generator = seeded(0)
    generator_state = generator.get_state()
    for call in (lambda: target.sample_given(torch.tensor([[-1.0]]), generator),
                 lambda: target.sample_given(torch.tensor([[1.0]]), generator=3),
                 lambda: target.sample(0, generator), lambda: target.sample(3, "seed")):
        with pytest.raises((TypeError, ValueError)):
            call()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(generator.get_state(), generator_state)
