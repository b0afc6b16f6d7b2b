"""Simulation-based calibration (nflesson.metrics.coverage): the expected coverage of a posterior's
highest-density regions, checked against closed forms on a Gaussian toy (exact, overconfident and
underconfident posteriors, and the prior, which is calibrated too), on the exact posterior of the
sum-and-product simulator, for a conditional flow; the binomial band against scipy; seeds; and
argument checks in words, before any state changes."""

import math

import pytest
import torch

import nflesson as nf
from nflesson.metrics import Coverage, coverage

F64 = torch.float64
SIM = nf.data.get("sum_and_product")


class GaussianToy:
    """theta ~ N(0, 1), x = theta + N(0, noise^2): the exact posterior is N(x / (1 + noise^2),
    noise^2 / (1 + noise^2)). This model is that posterior with its standard deviation times
    ``factor`` (1: exact, < 1: overconfident, > 1: underconfident), or, with ``ignore_x``, the prior."""

    dim, context_size = 1, 1

    def __init__(self, noise=0.5, factor=1.0, ignore_x=False):
        self.noise, self.factor, self.ignore_x = noise, factor, ignore_x

    def pairs(self, n, seed):
        generator = torch.Generator().manual_seed(seed)
        theta = torch.randn(n, 1, generator=generator, dtype=F64)
        return theta, theta + self.noise * torch.randn(n, 1, generator=generator, dtype=F64)

    def _posterior(self, context):
        if self.ignore_x:
            return torch.distributions.Normal(torch.zeros(len(context), dtype=F64), 1.0)
        shrink = 1 / (1 + self.noise**2)
        return torch.distributions.Normal(context[:, 0] * shrink, self.factor * self.noise * math.sqrt(shrink))

    def log_prob(self, theta, context):
        return self._posterior(context).log_prob(theta[:, 0])

    def sample_and_log_prob(self, n, context):
        assert len(context) == n
        posterior = self._posterior(context)
        draws = posterior.sample()
        return draws[:, None], posterior.log_prob(draws)

    def expected_coverage(self, levels):
        """2 Phi(factor z) - 1 with z the (1 + level) / 2 quantile of N(0, 1): the mass of the true
        posterior inside q's central interval of level ``level``."""
        z = torch.special.ndtri((1 + levels) / 2)
        return 2 * torch.special.ndtr(self.factor * z) - 1


def within(result, expected, n, slack):
    """Whether every coverage lies within 4 binomial standard errors (and ``slack``) of ``expected``."""
    error = torch.sqrt(expected * (1 - expected) / n)
    return bool(((result.coverage - expected).abs() <= 4 * error + slack).all())


# --- calibrated, overconfident, underconfident -------------------------------------------------

def test_the_exact_posterior_is_calibrated_within_the_binomial_band():
    toy = GaussianToy()
    theta, x = toy.pairs(4000, seed=1)
    result = coverage(toy, theta, x, samples=400, seed=2)
    assert isinstance(result, Coverage) and result.samples == 400 and result.confidence == 0.95
    torch.testing.assert_close(result.levels, torch.arange(1, 20, dtype=F64) / 20)
    assert within(result, result.levels, 4000, 1 / 400)
    outside = ((result.coverage < result.low) | (result.coverage > result.high)).sum().item()
    assert outside <= 4  # a pointwise 95% band: about 1 of 19 levels outside by chance, neighbours together
    # the levels of the smallest HPD regions holding the truth are uniform: a flat rank histogram
    counts = torch.histc(result.hpd_levels, bins=10, min=0, max=1)
    assert ((counts - 400).abs() < 4 * math.sqrt(400 * 0.9)).all()
    assert ((result.hpd_levels > 0) & (result.hpd_levels < 1)).all() and result.hpd_levels.shape == (4000,)


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.5])
def test_a_too_narrow_posterior_under_covers_and_a_too_wide_one_over_covers(factor):
    """q = N(exact mean, (factor x exact sd)^2): coverage 2 Phi(factor z_(1+a)/2) - 1 at level a,
    below the diagonal for factor < 1 (overconfident), above it for factor > 1."""
    toy = GaussianToy(factor=factor)
    theta, x = toy.pairs(3000, seed=3)
    levels = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9, 0.95], dtype=F64)
    result = coverage(toy, theta, x, levels=levels, samples=400, seed=4)
    expected = toy.expected_coverage(levels)
    assert within(result, expected, 3000, 1 / 400)
    if factor < 1:
        assert (result.coverage < result.low).all()  # every level out of the calibrated band, below it
    else:
        assert (result.coverage[:-1] > result.high[:-1]).all()
    assert factor != 0.5 or result.coverage[2] < 0.3  # half as wide: the 50% region holds the truth 26% of the time


def test_the_prior_is_calibrated_too():
    """Coverage is necessary, not sufficient: q(theta | x) = p(theta), which ignores x, covers
    exactly, as the docstring says."""
    toy = GaussianToy(ignore_x=True)
    theta, x = toy.pairs(3000, seed=5)
    result = coverage(toy, theta, x, samples=300, seed=6)
    assert within(result, result.levels, 3000, 1 / 300)


def test_the_exact_posterior_of_the_simulator_is_calibrated():
    """A conditional target as the model: its exact posterior (sample_given and log_prob), the
    reference line of a calibration plot."""
    theta, x = SIM.sample(400, generator=torch.Generator().manual_seed(7))
    result = coverage(SIM, theta, x, levels=(0.25, 0.5, 0.75, 0.9), samples=100, seed=8)
    assert within(result, result.levels, 400, 1 / 100)
    assert ((result.coverage >= result.low - 0.03) & (result.coverage <= result.high + 0.03)).all()


def test_a_conditional_flow_reproducibly_and_without_touching_the_random_state():
    torch.manual_seed(0)
    flow = nf.flows.nsf(2, layers=2, hidden=16, context=2)
    theta, x = SIM.sample(60, generator=torch.Generator().manual_seed(9))
    state = torch.random.get_rng_state()
    first = coverage(flow, theta, x, samples=50, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    again, other = coverage(flow, theta, x, samples=50, seed=3), coverage(flow, theta, x, samples=50, seed=4)
    assert torch.equal(first.hpd_levels, again.hpd_levels) and not torch.equal(first.hpd_levels, other.hpd_levels)
    assert first.coverage.shape == first.levels.shape == first.low.shape == first.high.shape == (19,)
    assert first.coverage.dtype == F64 and (first.coverage.diff() >= 0).all()  # larger regions hold more
    assert ((first.low <= first.levels) & (first.levels <= first.high)).all()
    # float64 flows and points work alike; levels 0 and 1 are allowed (nothing and everything covered)
    ends = coverage(flow.double(), theta.double(), x.double(), levels=[0.0, 1.0], samples=20)
    assert ends.coverage.tolist() == [0.0, 1.0] and ends.low.tolist() == [0.0, 1.0] and ends.high.tolist() == [0.0, 1.0]


def test_more_pairs_than_fit_in_one_batch_of_draws():
    toy = GaussianToy()
    theta, x = toy.pairs(700, seed=10)
    result = coverage(toy, theta, x, samples=200, seed=11)  # 2^16 // 200 = 327 pairs per batch: 3 batches
    assert result.hpd_levels.shape == (700,) and within(result, result.levels, 700, 1 / 200)
    single = coverage(toy, theta[:1], x[:1], samples=10)
    assert single.hpd_levels.shape == (1,) and set(single.coverage.tolist()) <= {0.0, 1.0}


# --- the band and the printout --------------------------------------------------------------------

def test_the_band_is_the_binomial_quantiles():
    stats = pytest.importorskip("scipy.stats")
    from nflesson.metrics import _binomial_band
    for n in (1, 7, 300, 4000):
        levels = torch.tensor([0.01, 0.05, 0.3, 0.5, 0.77, 0.95, 0.999], dtype=F64)
        for confidence in (0.9, 0.95):
            low, high = _binomial_band(n, levels, confidence)
            expected_low = stats.binom.ppf((1 - confidence) / 2, n, levels.numpy()) / n
            expected_high = stats.binom.ppf((1 + confidence) / 2, n, levels.numpy()) / n
            assert low.tolist() == pytest.approx(expected_low.tolist(), abs=1e-12)
            assert high.tolist() == pytest.approx(expected_high.tolist(), abs=1e-12)


def test_it_prints_the_usual_levels_with_their_band():
    toy = GaussianToy()
    result = coverage(toy, *toy.pairs(500, seed=12), samples=100, confidence=0.9)
    text = str(result)
    assert text.startswith("coverage of 500 pairs at 10%, 25%, 50%, 75%, 90%, 95%: ")
    assert "(90% band for a calibrated posterior: ±" in text
    odd = coverage(toy, *toy.pairs(20, seed=12), levels=[0.33], samples=10)
    assert str(odd).startswith("coverage of 20 pairs at 33%: ")


# --- argument checks ------------------------------------------------------------------------------

def test_argument_checks_in_words_before_anything_is_drawn():
    torch.manual_seed(0)
    flow, unconditional, bijector = nf.flows.nsf(2, layers=2, hidden=16, context=2), nf.flows.nsf(2), nf.Affine(2)
    theta, x = SIM.sample(10, generator=torch.Generator().manual_seed(1))
    bad = [
        (lambda: coverage("flow", theta, x), TypeError, r"model must be a conditional flow q\(theta \| x\).*got str"),
        (lambda: coverage(nf.Flow, theta, x), TypeError, r"got the class Flow itself"),
        (lambda: coverage(bijector, theta, x), TypeError, r"a bijector is not a model"),
        (lambda: coverage(unconditional, theta, x), ValueError, r"model is unconditional"),
        (lambda: coverage(flow, theta.tolist(), x), TypeError, r"theta must be a torch.Tensor"),
        (lambda: coverage(flow, theta[:, :1], x), ValueError, r"theta has 1 columns but this model has dim = 2"),
        (lambda: coverage(flow, theta, x[:, :1]), ValueError, r"x has 1 columns but this model's context has dim = 2"),
        (lambda: coverage(flow, theta.double(), x), TypeError, r"theta is float64 but this model computes in float32"),
        (lambda: coverage(flow, theta, x[:5]), ValueError, r"x has 5 rows for 10 rows of theta"),
        (lambda: coverage(flow, theta[:0], x[:0]), ValueError, r"coverage needs at least one held-out pair"),
        (lambda: coverage(flow, theta.clone().fill_(math.nan), x), ValueError, r"theta has NaN or inf in 10 of its 10"),
        (lambda: coverage(flow, theta, x.clone().fill_(math.inf)), ValueError, r"x has NaN or inf in 10"),
        (lambda: coverage(flow, theta, x, levels=[0.5, 1.5]), ValueError, r"levels must be .* in \[0, 1\], got 1.5"),
        (lambda: coverage(flow, theta, x, levels=[math.nan]), ValueError, r"levels must be .* in \[0, 1\], got nan"),
        (lambda: coverage(flow, theta, x, levels=[]), ValueError, r"levels is empty"),
        (lambda: coverage(flow, theta, x, levels=0.5), TypeError, r"levels must be a sequence of numbers"),
        (lambda: coverage(flow, theta, x, levels=["a"]), TypeError, r"levels must be numbers in \[0, 1\], got str"),
        (lambda: coverage(flow, theta, x, levels=torch.tensor([1])), TypeError, r"got a tensor of torch.int64"),
        (lambda: coverage(flow, theta, x, levels=torch.zeros(2, 2)), ValueError, r"got a tensor of shape \(2, 2\)"),
        (lambda: coverage(flow, theta, x, samples=0), ValueError, r"samples must be an integer >= 1, got 0"),
        (lambda: coverage(flow, theta, x, samples=10.0), TypeError, r"samples must be an integer >= 1, got float"),
        (lambda: coverage(flow, theta, x, confidence=1.0), ValueError, r"confidence must be > 0 and < 1, got 1.0"),
        (lambda: coverage(flow, theta, x, confidence="high"), TypeError, r"confidence must be a number"),
        (lambda: coverage(flow, theta, x, seed=-1), ValueError, r"seed must be an integer >= 0, got -1"),
    ]
    parameters = [p.detach().clone() for p in flow.parameters()]
    state = torch.random.get_rng_state()
    for call, error, message in bad:
        with pytest.raises(error, match=message):
            call()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(parameters, flow.parameters()))


def test_a_model_that_gives_nan_is_refused_in_words():
    class Broken(GaussianToy):
        def log_prob(self, theta, context):
            return torch.full((len(theta),), math.nan, dtype=F64)
    toy = Broken()
    with pytest.raises(ValueError, match=r"the model's log_prob is NaN at 5 of the 5 points .* so the coverage is "
                                         r"undefined"):
        coverage(toy, *toy.pairs(5, seed=0), samples=10)
