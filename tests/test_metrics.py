"""The gap to the truth: KL(p || q) from test samples of the target and KL(q || p) from samples
of the flow, checked against closed forms, against the test NLL minus the entropy, and for
reproducibility."""

import math

import pytest
import torch

import nflesson as nf

F64 = torch.float64


def gaussian_flow(loc, log_scale, dim=2):
    """x = z * exp(log_scale) + loc: the flow of N(loc, diag(exp(2 log_scale)))."""
    layer = nf.Affine(dim).double()
    with torch.no_grad():
        layer.shift.copy_(torch.as_tensor(loc, dtype=F64))
        layer.log_scale.copy_(torch.as_tensor(log_scale, dtype=F64))
    return nf.Flow([layer])


def kl_normal(mean_p, std_p, mean_q, std_q):
    """KL(N(mean_p, std_p^2) || N(mean_q, std_q^2)), summed over independent coordinates."""
    mean_p, std_p, mean_q, std_q = (torch.as_tensor(v, dtype=F64) for v in (mean_p, std_p, mean_q, std_q))
    return (torch.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2 * std_q**2) - 0.5).sum().item()


class DiagonalGaussian:
    """A target with an exact density (as nf.data's), here N(mean, diag(std^2)) in 2D."""

    dim = 2

    def __init__(self, mean, std):
        self.distribution = torch.distributions.Independent(
            torch.distributions.Normal(torch.tensor(mean, dtype=F64), torch.tensor(std, dtype=F64)), 1)

    def log_prob(self, x):
        return self.distribution.log_prob(x)

    def sample(self, n, generator=None):
        return self.distribution.sample((n,))

    def entropy(self):
        return self.distribution.entropy().item()


def test_the_truth_is_zero_nats_from_itself():
    target = DiagonalGaussian([1.0, -2.0], [0.5, 2.0])
    test = target.sample(1000)
    assert nf.gap(target, target, test) == (0.0, 0.0)
    assert nf.gap(target.log_prob, target, test).nats == 0.0


def test_gap_matches_the_closed_form_kl_of_two_gaussians():
    torch.manual_seed(0)
    target = DiagonalGaussian([1.0, -2.0], [0.5, 2.0])
    model = gaussian_flow([0.8, -1.5], [math.log(0.6), math.log(1.5)])
    result = nf.gap(model, target, target.sample(50_000))
    expected = kl_normal([1.0, -2.0], [0.5, 2.0], [0.8, -1.5], [0.6, 1.5])
    assert abs(result.nats - expected) < 4 * result.standard_error
    assert 0 < result.standard_error < 0.01
    assert str(result).endswith(" nats") and " ± " in str(result)


def test_gap_agrees_with_test_nll_minus_entropy_with_a_smaller_error():
    torch.manual_seed(0)
    target = DiagonalGaussian([1.0, -2.0], [0.5, 2.0])
    model = gaussian_flow([1.05, -2.1], [math.log(0.52), math.log(1.9)])  # close to the truth
    test = target.sample(20_000)
    with torch.no_grad():
        log_q = model.log_prob(test)
    nll_minus_entropy = -log_q.mean().item() - target.entropy()
    nll_error = log_q.std().item() / math.sqrt(len(test))
    result = nf.gap(model, target, test)
    assert abs(result.nats - nll_minus_entropy) < 3 * nll_error
    assert result.standard_error < nll_error / 5


def test_gap_normalises_an_energy():
    energy = nf.data.get("u1")
    test = energy.sample(2000, generator=torch.Generator().manual_seed(0))
    exact = lambda x: energy.log_prob(x) - energy.log_normalizer()  # noqa: E731
    assert abs(nf.gap(exact, energy, test).nats) < 1e-12


def test_reverse_gap_matches_the_closed_form_and_is_reproducible():
    target = DiagonalGaussian([0.0, 1.0], [1.0, 0.5])
    flow = gaussian_flow([0.3, 1.2], [math.log(0.8), math.log(0.7)])
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = nf.reverse_gap(flow, target, n=40_000, seed=3)
    assert torch.equal(torch.get_rng_state(), state), "the global random state moved"
    assert nf.reverse_gap(flow, target, n=40_000, seed=3) == first
    assert nf.reverse_gap(flow, target, n=40_000, seed=4) != first
    expected = kl_normal([0.3, 1.2], [0.8, 0.7], [0.0, 1.0], [1.0, 0.5])
    assert abs(first.nats - expected) < 4 * first.standard_error


def test_reverse_gap_adds_log_z_of_an_energy():
    energy = nf.data.get("u1")
    torch.manual_seed(0)
    flow = nf.flows.planar(2, layers=4)
    nf.fit_reverse_kl(flow, energy, steps=200, lr=0.03, progress=False)
    result = nf.reverse_gap(flow, energy, n=5000)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x, log_q = flow.sample_and_log_prob(5000)
    loss = (log_q - energy.log_prob(x)).mean().item()
    assert abs(result.nats - (loss + energy.log_normalizer())) < 1e-4 and result.nats > 0


@pytest.mark.parametrize("call, error, message", [
    (lambda: nf.gap(nf.flows.planar(2), nf.data.get("moons"), torch.zeros(5, 3)), ValueError, "3 columns"),
    (lambda: nf.gap(nf.flows.planar(2), nf.data.get("moons"), [[0.0, 0.0]]), TypeError, "torch.Tensor"),
    (lambda: nf.reverse_gap(nf.flows.planar(2), nf.data.get("moons"), n=0), ValueError, "n must be"),
])
def test_bad_inputs_say_what_is_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call()
