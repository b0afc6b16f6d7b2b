"""Conditional layers and flows, q(x | c), in float64: round trips, log-dets against the autograd
Jacobian in x for a fixed context, triangular structure in x kept, densities that integrate to 1
for each context, gradients that reach the context, and the errors of a missing or wrong context."""

import pytest
import torch
from torch.autograd.functional import jacobian

import nflesson as nf
from cases import randomize, real_points

K = 3  # the context's width

LAYERS = {
    "affine_coupling": lambda: nf.AffineCoupling(4, hidden=8, context=K),
    "spline_coupling": lambda: nf.SplineCoupling(4, hidden=8, bins=4, bound=3.0, context=K),
    "maf": lambda: nf.MaskedAutoregressive(4, hidden=8, context=K),
    "spline_autoregressive": lambda: nf.SplineAutoregressive(4, hidden=8, bins=4, bound=3.0, context=K),
    "iaf": lambda: nf.Inverse(nf.MaskedAutoregressive(4, hidden=8, context=K)),
    "realnvp": lambda: nf.flows.realnvp(4, layers=3, hidden=8, context=K),
    "maf_flow": lambda: nf.flows.maf(4, layers=3, hidden=8, context=K),
    "iaf_flow": lambda: nf.flows.iaf(4, layers=3, hidden=8, context=K),
    "nsf": lambda: nf.flows.nsf(4, layers=3, hidden=8, bins=4, bound=3.0, context=K),
    "nsf_autoregressive": lambda: nf.flows.nsf(4, layers=3, hidden=8, bins=4, bound=3.0, autoregressive=True, context=K),
    "mixed": lambda: nf.Flow([nf.AffineCoupling(4, hidden=8, context=K), nf.LULinear(4), nf.ActNorm(4),
                              nf.MaskedAutoregressive(4, hidden=8, context=K)]),
}


def make(name, scale=0.3):
    torch.manual_seed(0)
    return randomize(LAYERS[name]().double(), scale)


def contexts(n, seed=5):
    return torch.randn(n, K, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_round_trips_both_ways_for_each_context(name):
    layer, x, c = make(name), real_points(16, 4), contexts(16)
    z, inverse_log_det = layer.inverse(x, c)
    back, forward_log_det = layer(z, c)
    torch.testing.assert_close(back, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(forward_log_det, -inverse_log_det, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_log_det_is_that_of_the_jacobian_in_x_for_a_fixed_context(name):
    layer, z, c = make(name), real_points(5, 4, seed=3), contexts(5)
    _, log_det = layer(z, c)
    for i in range(5):
        jac = jacobian(lambda u: layer(u[None], c[i])[0][0], z[i])
        assert abs(torch.linalg.slogdet(jac).logabsdet.item() - log_det[i].item()) < 1e-9


@pytest.mark.parametrize("name", ["maf", "spline_autoregressive", "affine_coupling"])
def test_the_jacobian_in_x_stays_triangular_with_a_context(name):
    layer, x, c = make(name), real_points(1, 4, seed=4)[0], contexts(1)[0]
    jac = jacobian(lambda u: layer.inverse(u[None], c)[0][0], x)  # dz/dx, scoring direction
    assert torch.equal(jac.triu(1), torch.zeros_like(jac))


@pytest.mark.parametrize("name", ["realnvp", "nsf"])
def test_the_density_of_each_context_integrates_to_one(name):
    torch.manual_seed(0)
    factory = nf.flows.realnvp if name == "realnvp" else nf.flows.nsf
    flow = randomize(factory(2, layers=3, hidden=8, context=K).double(), 0.3)
    ticks = torch.linspace(-9, 9, 400, dtype=torch.float64)
    grid = torch.stack([g.flatten() for g in torch.meshgrid(ticks, ticks, indexing="xy")], -1)
    cell = (ticks[1] - ticks[0]) ** 2
    masses = []
    with torch.no_grad():
        for c in contexts(3):
            masses.append((flow.log_prob(grid, c).exp().sum() * cell).item())
    assert all(abs(m - 1) < 1e-3 for m in masses), masses
    with torch.no_grad():
        first, second = (flow.log_prob(grid[:100], c) for c in contexts(2))
    assert (first - second).abs().max() > 1e-3  # the context changes the density


@pytest.mark.parametrize("name", ["realnvp", "maf_flow", "iaf_flow", "nsf", "nsf_autoregressive"])
def test_gradients_reach_the_context_and_sampling_follows_it(name):
    flow = make(name)
    c = contexts(8).requires_grad_(True)
    flow.log_prob(real_points(8, 4), c).sum().backward()
    assert c.grad is not None and c.grad.abs().sum() > 0
    torch.manual_seed(1)
    one = flow.sample(6, contexts(1)[0])
    torch.manual_seed(1)
    rows = flow.sample(6, contexts(1)[0].expand(6, K))
    assert one.shape == (6, 4) and torch.equal(one, rows)
    x, log_q = flow.sample_and_log_prob(6, contexts(6))
    torch.testing.assert_close(log_q, flow.log_prob(x, contexts(6)), atol=1e-9, rtol=0)


def test_an_unconditional_flow_is_what_it_was_and_ignores_a_context():
    torch.manual_seed(0)
    plain = nf.flows.realnvp(2, layers=2, hidden=8)
    torch.manual_seed(0)
    zero = nf.flows.realnvp(2, layers=2, hidden=8, context=0)
    x = torch.randn(5, 2)
    assert plain.context_size == 0 and torch.equal(plain.log_prob(x), zero.log_prob(x))
    assert torch.equal(plain.log_prob(x, torch.randn(3)), plain.log_prob(x))


def test_a_missing_or_wrong_context_is_named():
    flow = nf.flows.realnvp(2, layers=2, hidden=8, context=K)
    x = torch.randn(5, 2)
    calls = [
        (lambda: flow.log_prob(x), ValueError, "conditional on a context of width 3: pass context=c"),
        (lambda: flow.log_prob(x, torch.randn(5, 2)), ValueError, "context has 2 columns"),
        (lambda: flow.log_prob(x, torch.randn(4, K)), ValueError, "context has 4 rows for 5 points"),
        (lambda: flow.log_prob(x, [0.0, 0.0, 0.0]), TypeError, "context must be a tensor"),
        (lambda: flow.log_prob(x, torch.randn(5, K).double()), TypeError, "context is float64"),
        (lambda: flow.sample(5, torch.randn(4, K)), ValueError, "context has 4 rows for 5 points"),
        (lambda: nf.flows.maf(2, context=-1), ValueError, "context must be an integer >= 0"),
        (lambda: nf.Flow([nf.AffineCoupling(2, context=2), nf.AffineCoupling(2, context=3)]), ValueError,
         "disagree on the context's width"),
    ]
    for call, error, message in calls:
        with pytest.raises(error, match=message):
            call()


def test_a_continuous_flow_reads_its_context_in_the_velocity():
    torch.manual_seed(0)
    cnf = nf.ContinuousFlow(2, nf.VelocityMLP(2, hidden=8, context=K), rtol=1e-9, atol=1e-9, context=K)
    flow = randomize(nf.Flow([cnf]).double(), 0.3)
    x, c = real_points(6, 2), contexts(6)
    z, inverse_log_det = flow.inverse(x, c)
    back, forward_log_det = flow(z, c)
    torch.testing.assert_close(back, x, atol=1e-6, rtol=0)
    torch.testing.assert_close(forward_log_det, -inverse_log_det, atol=1e-6, rtol=0)
    for i in range(2):
        jac = jacobian(lambda u: flow(u[None], c[i])[0][0], z[i])
        assert abs(torch.linalg.slogdet(jac).logabsdet.item() - forward_log_det[i].item()) < 1e-6
    assert flow.stages(4).points(x, context=c)[-1].shape == (6, 2)
    velocity = cnf.velocity
    loss = nf.flow_matching_loss(velocity, x, torch.randn_like(x), torch.rand(6, dtype=torch.float64), context=c)
    loss.backward()
    assert velocity.net[0].weight.grad[:, -K:].abs().sum() > 0  # the context's inputs are trained
    with pytest.raises(ValueError, match="conditional on a context of width 3"):
        flow.log_prob(x)
    with pytest.raises(ValueError, match="the velocity reads a context of width 3 but the flow has context = 0"):
        nf.ContinuousFlow(2, nf.VelocityMLP(2, context=K))


class ShiftedGaussian:
    """x | c ~ N((c, -c), 0.5^2 I) with c ~ U[-2, 2]: a conditional target for the tests, with
    H(X | C) = log(2 pi e 0.25)."""

    dim, context_size, bounds = 2, 1, ((-4.0, 4.0), (-4.0, 4.0))
    snapshot_contexts = torch.tensor([[-1.0], [0.0], [1.0]])

    def sample(self, n, generator=None):
        c = torch.rand(n, 1, generator=generator) * 4 - 2
        return self.sample_given(c, generator), c

    def sample_given(self, context, generator=None):
        return torch.cat([context, -context], 1) + 0.5 * torch.randn(len(context), 2, generator=generator)

    def log_prob(self, x, context):
        mean = torch.cat([context, -context], 1)
        return torch.distributions.Normal(mean, 0.5).log_prob(x).sum(-1)


def test_fit_and_flow_matching_learn_a_conditional_density_from_pairs_and_gap_measures_it():
    target = ShiftedGaussian()
    test = target.sample(4000, generator=torch.Generator().manual_seed(9))
    torch.manual_seed(0)
    flow = nf.flows.realnvp(2, layers=4, hidden=32, context=1)
    history = nf.fit(flow, target, steps=400, lr=1e-2, progress=False)
    gap = nf.gap(flow, target, test)
    assert 0 <= gap.nats < 0.05, gap
    contexts = target.snapshot_contexts  # the snapshots draw each of the target's few contexts
    assert torch.equal(history.context, contexts) and [t.shape for t in history.target_samples] == [(500, 2)] * 3
    x, c = target.sample(2000, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    again = nf.flows.realnvp(2, layers=4, hidden=32, context=1)
    nf.fit(again, x, context=c, steps=400, lr=1e-2, progress=False)
    assert nf.gap(again, target, test).nats < 0.1
    velocity = nf.VelocityMLP(2, hidden=32, context=1)
    matched = nf.fit_flow_matching(velocity, target, steps=300, progress=False, frames=2)
    assert matched.losses[-1] < matched.losses[0] and matched.context is not None
    with pytest.raises(ValueError, match="this flow is unconditional"):
        nf.fit(nf.flows.realnvp(2, layers=2, hidden=8), target, steps=2)
    with pytest.raises(TypeError, match="this flow is conditional"):
        nf.fit(flow, nf.data.get("moons"), steps=2)
    with pytest.raises(ValueError, match="conditional on a context of width 1"):
        nf.fit(flow, x, steps=2)
    with pytest.raises(TypeError, match="a conditional target's test set is a pair"):
        nf.gap(flow, target, test[0])


def test_as_distribution_of_a_conditional_flow_is_that_of_one_context():
    flow = make("realnvp")
    c = contexts(1)[0]
    d = flow.as_distribution(c)
    x = real_points(5, 4)
    torch.testing.assert_close(d.log_prob(x), flow.log_prob(x, c))
    torch.manual_seed(2)
    a = d.sample((5,))
    torch.manual_seed(2)
    torch.testing.assert_close(a, flow.sample(5, c))
    with pytest.raises(ValueError, match=r"that of one context: pass a tensor of shape \(3,\)"):
        flow.as_distribution()
