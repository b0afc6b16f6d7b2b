"""Flow-level tests: densities integrate to 1, sampling agrees with scoring, the
torch.distributions view agrees, state moves and reloads, and bad arguments are refused."""

import math

import pytest
import torch

import nflesson as nf
from cases import randomize, real_points

FACTORIES_2D = {
    "linear": lambda: nf.flows.linear(2, layers=2),
    "planar": lambda: nf.flows.planar(2, layers=4),
    "radial": lambda: nf.flows.radial(2, layers=4),
    "realnvp": lambda: nf.flows.realnvp(2, layers=4, hidden=16),
    "nice": lambda: nf.flows.realnvp(2, layers=4, hidden=16, additive=True),
    "maf": lambda: nf.flows.maf(2, layers=4, hidden=16),
    "iaf": lambda: nf.flows.iaf(2, layers=4, hidden=16),
    "nsf": lambda: nf.flows.nsf(2, layers=4, hidden=16, bins=6, bound=3.0),
    "nsf_autoregressive": lambda: nf.flows.nsf(2, layers=4, hidden=16, bins=6, bound=3.0, autoregressive=True),
    "glow": lambda: nf.flows.glow(2, layers=2, hidden=16),
}


def make_flow(name):
    """A 2D flow with random parameters, small enough that its mass stays inside grid_2d."""
    torch.manual_seed(0)
    return randomize(FACTORIES_2D[name]().double(), 0.15 if name in ("maf", "iaf", "glow") else 0.3)


def grid_2d(half_width=9.0, n=500):
    ticks = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(ticks, ticks, indexing="xy")
    return torch.stack([xx.flatten(), yy.flatten()], -1), (ticks[1] - ticks[0]) ** 2


@pytest.mark.parametrize("name", sorted(FACTORIES_2D))
def test_2d_density_integrates_to_one(name):
    flow = make_flow(name)
    points, cell = grid_2d()
    with torch.no_grad():
        mass = flow.log_prob(points).exp().sum() * cell
    assert abs(mass.item() - 1) < 1e-3


@pytest.mark.parametrize("flow, lo, hi", [
    (lambda: nf.Flow([nf.Affine(1), nf.Affine(1), nf.Affine(1)]), -12, 12),
    (lambda: nf.flows.planar(1, layers=3), -12, 12),
    (lambda: nf.flows.radial(1, layers=3), -12, 12),
    (lambda: nf.flows.maf(1, layers=2, hidden=8), -12, 12),
    (lambda: nf.Flow([nf.RationalQuadraticSpline(1, bins=6, bound=3.0), nf.Affine(1)]), -12, 12),
    (lambda: nf.Flow([nf.Affine(1), nf.Sigmoid()]), 0, 1),
    (lambda: nf.Flow([nf.Affine(1), nf.LogitPixels(17, alpha=0.05)]), -17 * 0.05 / 0.9, 17 * 0.95 / 0.9),
])
def test_1d_density_integrates_to_one(flow, lo, hi):
    torch.manual_seed(0)
    flow = randomize(flow().double(), 0.5)
    x = torch.linspace(lo, hi, 200_001, dtype=torch.float64)[1:-1, None]
    with torch.no_grad():
        mass = torch.trapezoid(flow.log_prob(x).exp(), x[:, 0])
    assert abs(mass.item() - 1) < 1e-4


def test_log_normal_density_from_exp():
    flow = nf.Flow([nf.Exp()], dim=1).double()
    x = torch.tensor([[0.5], [1.0], [3.0]], dtype=torch.float64)
    expected = -0.5 * x.log().square() - 0.5 * math.log(2 * math.pi) - x.log()  # p(log x) / x
    assert torch.allclose(flow.log_prob(x), expected[:, 0])


@pytest.mark.parametrize("name", sorted(FACTORIES_2D))
def test_sample_and_log_prob_agrees_with_log_prob(name):
    flow = make_flow(name)
    x, log_prob = flow.sample_and_log_prob(200)
    assert x.shape == (200, 2) and log_prob.shape == (200,)
    assert torch.allclose(log_prob, flow.log_prob(x), atol=1e-9)


@pytest.mark.parametrize("name", sorted(FACTORIES_2D))
def test_as_distribution_agrees(name):
    flow = make_flow(name)
    dist = flow.as_distribution()
    x = real_points(50, 2)
    assert torch.allclose(dist.log_prob(x), flow.log_prob(x), atol=1e-9)
    torch.manual_seed(3)
    a = dist.sample((7,))
    torch.manual_seed(3)
    assert torch.allclose(a, flow.sample(7))


def test_sample_is_seeded_and_has_no_gradient():
    flow = make_flow("realnvp")
    torch.manual_seed(5)
    a = flow.sample(10)
    torch.manual_seed(5)
    assert torch.equal(a, flow.sample(10)) and not a.requires_grad


def test_trace_lists_the_points_after_each_layer():
    flow = make_flow("maf")
    z = real_points(20, 2)
    forward = flow.trace(z)
    assert len(forward) == len(flow.layers) + 1 and torch.equal(forward[0], z)
    assert torch.allclose(forward[-1], flow(z)[0])
    backward = flow.trace(forward[-1], inverse=True)
    assert torch.allclose(backward[-1], z, atol=1e-10)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(backward, reversed(forward)))


def test_stages_are_the_layers_with_their_cumulative_log_dets():
    flow = make_flow("realnvp")
    z = real_points(20, 2)
    stages = flow.stages()
    assert stages.count == stages.end == len(flow.layers)
    points, log_dets = stages.points(z, log_det=True)
    assert len(points) == len(log_dets) == stages.count + 1
    assert torch.equal(points[0], z) and torch.equal(log_dets[0], torch.zeros(20, dtype=torch.float64))
    x, log_det = flow(z)
    assert torch.allclose(points[-1], x) and torch.allclose(log_dets[-1], log_det)
    assert all(torch.equal(a, b) for a, b in zip(points, flow.trace(z)))
    partial = nf.Flow(list(flow.layers[:2]))
    assert torch.allclose(log_dets[2], partial(z)[1])
    back, back_log_dets = stages.points(x, inverse=True, log_det=True)
    assert torch.equal(back[0], x) and torch.allclose(back[-1], z, atol=1e-10)
    assert torch.allclose(back_log_dets[-1], -log_det)
    z2, log_det2 = stages.back_from(2, points[2])
    assert torch.allclose(z2, z, atol=1e-10) and torch.allclose(log_det2, -partial(z)[1])
    assert [stages.name(t) for t in (0, 1.5, 4)] == ["the base", "layer 2 of 4 at work",
                                                     "the data: all 4 layers applied"]


def test_a_flow_of_one_continuous_flow_has_its_ode_stages():
    ode = nf.ContinuousFlow(2, method="rk4", steps=4)
    flow = nf.Flow([ode])
    assert nf.flow.continuous_of(flow) is ode
    assert nf.flow.continuous_of(nf.Flow([ode, nf.Affine(2)])) is None
    assert nf.flow.continuous_of(nf.flows.planar(2)) is None and nf.flow.continuous_of(ode) is None
    stages = flow.stages(time_steps=5)
    assert (stages.count, stages.end) == (5, 1) and len(stages.points(torch.zeros(3, 2))) == 6
    assert len(flow.trace(torch.zeros(3, 2))) == 2  # trace stays layer by layer
    assert nf.flows.planar(2, layers=3).stages(time_steps=5).count == 3  # time_steps is for ODE time


def test_flow_is_a_bijector_and_nests():
    inner = make_flow("realnvp")
    outer = nf.Flow([inner, nf.Affine(2).double()])
    x = real_points(10, 2)
    assert torch.allclose(outer.log_prob(x), nf.Flow(list(inner.layers) + [outer.layers[1]]).log_prob(x))


def test_base_moves_with_the_flow_and_survives_state_dict():
    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    assert {"base_loc", "base_scale"} <= set(flow.state_dict())
    flow = flow.double()
    assert flow.base.mean.dtype == torch.float64
    copy = nf.flows.realnvp(2, layers=2, hidden=8).double()
    copy.load_state_dict(randomize(flow).state_dict())
    x = real_points(5, 2)
    assert torch.equal(copy.log_prob(x), flow.log_prob(x))


def test_custom_base_distribution():
    base = torch.distributions.Independent(
        torch.distributions.Normal(torch.zeros(2, dtype=torch.float64), 2 * torch.ones(2, dtype=torch.float64)), 1)
    flow = nf.Flow([nf.Affine(2).double()], base=base)
    x = real_points(5, 2)
    assert torch.allclose(flow.log_prob(x), base.log_prob(x))


def test_flow_errors():
    with pytest.raises(ValueError, match="disagree"):
        nf.Flow([nf.Affine(2), nf.Affine(3)])
    with pytest.raises(ValueError, match="disagree"):
        nf.Flow([nf.Affine(2)], dim=3)
    with pytest.raises(ValueError, match="pass dim"):
        nf.Flow([nf.Exp()])
    with pytest.raises(TypeError, match="Bijectors"):
        nf.Flow([torch.nn.Linear(2, 2)])
    flow = nf.flows.maf(3, layers=1)
    with pytest.raises(ValueError, match="2 columns but this flow has dim = 3"):
        flow.log_prob(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="n must be"):
        flow.sample(0)
    with pytest.raises(ValueError, match=r"shape \(batch, dim\)"):
        flow.trace(torch.zeros(3))


@pytest.mark.parametrize("factory", [nf.flows.linear, nf.flows.planar, nf.flows.radial, nf.flows.realnvp,
                                     nf.flows.maf, nf.flows.iaf, nf.flows.glow])
def test_factories_refuse_bad_sizes(factory):
    with pytest.raises(ValueError, match="layers"):
        factory(2, layers=0)
    with pytest.raises(ValueError, match="dim"):
        factory(0)
    if factory in (nf.flows.realnvp, nf.flows.maf, nf.flows.iaf, nf.flows.glow):
        with pytest.raises(ValueError, match="hidden"):
            factory(2, hidden=0)


def test_realnvp_masks_alternate_and_need_two_dimensions():
    flow = nf.flows.realnvp(4, layers=3)
    masks = [layer.mask.tolist() for layer in flow.layers]
    assert masks == [[True, True, False, False], [False, False, True, True], [True, True, False, False]]
    with pytest.raises(ValueError, match="dim >= 2"):
        nf.flows.realnvp(1)


@pytest.mark.parametrize("dim", [4, 5])
def test_realnvp_alternating_masks_split_by_slices_as_by_gathers(dim):
    flow = randomize(nf.flows.realnvp(dim, layers=3, hidden=8, mask="alternating").double())
    even = [i % 2 == 0 for i in range(dim)]
    assert [layer.mask.tolist() for layer in flow.layers] == [even, [not k for k in even], even]
    assert [layer.block for layer in flow.layers] == ["even", "odd", "even"]
    z = real_points(20, dim)
    x, log_det = flow(z)
    back, log_det_back = flow.inverse(x)
    for layer in flow.layers:
        layer.block = None  # the general path: index, concatenate, unshuffle
    x_gathered, log_det_gathered = flow(z)
    assert torch.equal(x, x_gathered) and torch.equal(log_det, log_det_gathered)
    assert torch.allclose(back, z, atol=1e-12) and torch.allclose(log_det_back, -log_det, atol=1e-12)


def test_glow_steps_are_actnorm_lulinear_coupling_from_the_data_side():
    flow = nf.flows.glow(4, layers=3, hidden=8)
    assert [type(layer) for layer in flow.layers] == [nf.AffineCoupling, nf.LULinear, nf.ActNorm] * 3
    assert [layer.mask.tolist() for layer in flow.layers[::3]] == [[True, True, False, False],
                                                                    [False, False, True, True],
                                                                    [True, True, False, False]]


def test_alternation_counts_from_the_data_side_as_in_zuko():
    """The last layer (next to the data) keeps the first half / uses the order 0, 1, ..., d - 1."""
    realnvp, maf = nf.flows.realnvp(2, layers=4), nf.flows.maf(3, layers=4)
    assert [layer.mask.tolist() for layer in realnvp.layers] == [[False, True], [True, False]] * 2
    assert [layer.made.degrees.tolist() for layer in maf.layers] == [[3, 2, 1], [1, 2, 3]] * 2
    assert "mask=[1, 0], affine" in repr(realnvp.layers[-1])


def test_a_flow_without_layers_is_its_base():
    flow, x = nf.Flow([], dim=2), torch.randn(5, 2)
    z, log_det = flow.inverse(x)
    assert torch.equal(z, x) and torch.equal(log_det, torch.zeros(5))
    assert torch.allclose(flow.log_prob(x), flow.base.log_prob(x))


def test_as_distribution_scores_in_one_pass_through_the_layers():
    """log_prob runs each layer once (data -> base), like Flow.log_prob: a one-layer MAF runs
    its MADE once, not once to invert and dim more times to recompute the log-det forwards."""
    flow = nf.flows.maf(4, layers=1, hidden=8).double()
    calls = []
    flow.layers[0].made.register_forward_hook(lambda *args: calls.append(1))
    x = real_points(5, 4)
    expected = flow.log_prob(x)
    calls.clear()
    dist = flow.as_distribution()
    assert torch.equal(dist.log_prob(x), expected) and len(calls) == 1
    z = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(dist.transforms[0].log_abs_det_jacobian(z, dist.transforms[0](z)), flow.layers[0](z)[1])


def test_a_one_layer_flow_names_its_last_stage_in_the_singular():
    assert nf.flows.linear(2).stages().name(1) == "the data: the layer applied"
