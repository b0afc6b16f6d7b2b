"""Classifier-free guidance of a conditional continuous flow (ContinuousFlow.guided, GuidedVelocity),
in float64: the formula, w = 0 the unguided flow exactly, round trips and log-dets against the
autograd Jacobian of the guided solve, parameters shared with the trained velocity, and errors."""

import pytest
import torch
from torch.autograd.functional import jacobian

import nflesson as nf
from cases import randomize, real_points
from nflesson.continuous import GuidedVelocity

K = 3


def conditional_flow(dim=2, **solver):
    torch.manual_seed(0)
    velocity = randomize(nf.VelocityMLP(dim, hidden=8, context=K).double(), 0.3)
    return nf.ContinuousFlow(dim, velocity, context=K, **({"rtol": 1e-9, "atol": 1e-9} | solver))


def contexts(n, seed=5):
    return torch.randn(n, K, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("weight", [-1.0, 0.5, 3.0])
def test_the_velocity_is_the_guidance_formula(weight):
    flow = conditional_flow()
    v = flow.velocity
    null = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    guided = GuidedVelocity(v, weight, null)
    x, c = real_points(7, 2), contexts(7)
    for t in (0.3, torch.tensor(0.7, dtype=torch.float64), torch.rand(7, dtype=torch.float64)):
        expected = (1 + weight) * v(x, t, c) - weight * v(x, t, null.expand(7, K))
        torch.testing.assert_close(guided(x, t, c), expected, atol=1e-12, rtol=0)
    if weight == -1.0:  # w = -1: the null context's own velocity
        torch.testing.assert_close(guided(x, 0.4, c), v(x, 0.4, null.expand(7, K)), atol=1e-12, rtol=0)
    one = torch.rand(1, dtype=torch.float64)  # one point, one time
    torch.testing.assert_close(guided(x[:1], one, c[:1]),
                               (1 + weight) * v(x[:1], one, c[:1]) - weight * v(x[:1], one, null[None]),
                               atol=1e-12, rtol=0)


def test_the_default_null_context_is_zeros():
    flow = conditional_flow()
    guided = flow.guided(2.0)
    assert torch.equal(guided.velocity.null_context, torch.zeros(K, dtype=torch.float64))
    x, c = real_points(4, 2), contexts(4)
    expected = 3 * flow.velocity(x, 0.5, c) - 2 * flow.velocity(x, 0.5, torch.zeros(4, K, dtype=torch.float64))
    torch.testing.assert_close(guided.velocity(x, 0.5, c), expected, atol=1e-12, rtol=0)


def test_weight_zero_is_the_unguided_flow():
    flow = conditional_flow()
    guided = flow.guided(0.0)
    x, c = real_points(6, 2), contexts(6)
    assert torch.equal(guided.velocity(x, 0.25, c), flow.velocity(x, 0.25, c))
    z, log_det = flow.inverse(x, c)
    z_guided, log_det_guided = guided.inverse(x, c)
    assert torch.equal(z, z_guided) and torch.equal(log_det, log_det_guided)
    plain, again = nf.Flow([flow]), nf.Flow([guided])
    assert torch.equal(plain.log_prob(x, c), again.log_prob(x, c))


@pytest.mark.parametrize("weight", [1.0, 3.0])
def test_round_trips_and_log_det_against_the_jacobian_of_the_guided_solve(weight):
    guided = nf.Flow([conditional_flow().guided(weight)])
    x, c = real_points(5, 2), contexts(5)
    z, inverse_log_det = guided.inverse(x, c)
    back, forward_log_det = guided(z, c)
    torch.testing.assert_close(back, x, atol=1e-6, rtol=0)
    torch.testing.assert_close(forward_log_det, -inverse_log_det, atol=1e-6, rtol=0)
    for i in range(3):
        jac = jacobian(lambda u: guided(u[None], c[i])[0][0], z[i])
        assert abs(torch.linalg.slogdet(jac).logabsdet.item() - forward_log_det[i].item()) < 1e-6
    unguided = nf.Flow([conditional_flow()])
    assert (unguided.log_prob(x, c) - guided.log_prob(x, c)).abs().max() > 1e-3  # a density of its own


def test_the_guided_flow_shares_the_velocity_and_its_solver():
    flow = conditional_flow(method="rk4", steps=7, divergence="hutchinson")
    guided = flow.guided(1.5)
    assert guided.velocity.velocity is flow.velocity
    assert {id(p) for p in guided.parameters()} == {id(p) for p in flow.parameters()}
    assert (guided.method, guided.steps, guided.divergence, guided.context_size) == ("rk4", 7, "hutchinson", K)
    x, c = real_points(4, 2), contexts(4)
    guided.velocity(x, 0.5, c).square().sum().backward()
    assert all(p.grad is not None for p in flow.velocity.parameters())
    samples = nf.Flow([guided]).double().sample(5, contexts(1)[0])  # one context for all, through Flow.sample
    assert samples.shape == (5, 2) and torch.isfinite(samples).all()
    points = guided.trajectory(real_points(5, 2), [0.0, 1.0], context=contexts(5))
    assert points.shape == (2, 5, 2)


def test_the_null_context_follows_the_flow_dtype():
    torch.manual_seed(0)
    flow = nf.ContinuousFlow(2, nf.VelocityMLP(2, hidden=8, context=K), context=K)
    guided = flow.guided(1.0).double()
    assert guided.velocity.null_context.dtype == torch.float64
    assert guided.velocity(real_points(3, 2), 0.5, contexts(3)).dtype == torch.float64


def test_a_plain_callable_velocity_can_be_guided():
    def velocity(x, t, c):
        return c[:, :2] - x

    guided = GuidedVelocity(velocity, 2.0, context=K)
    x, c = torch.randn(4, 2), torch.randn(4, K)
    torch.testing.assert_close(guided(x, 0.1, c), 3 * (c[:, :2] - x) + 2 * x)
    assert GuidedVelocity(velocity, 1.0, torch.ones(2)).context_size == 2  # width from the null context


def test_errors():
    flow = conditional_flow()
    v = flow.velocity
    x, c = real_points(3, 2), contexts(3)
    calls = [
        (lambda: nf.ContinuousFlow(2).guided(1.0), ValueError, "needs a conditional flow"),
        (lambda: flow.guided("3"), TypeError, "weight must be a number"),
        (lambda: flow.guided(float("nan")), ValueError, "weight must be a finite number"),
        (lambda: flow.guided(True), TypeError, "weight must be a number"),
        (lambda: flow.guided(1.0, [0.0, 0.0, 0.0]), TypeError, r"null_context must be a tensor of shape \(3,\)"),
        (lambda: flow.guided(1.0, torch.zeros(2, dtype=torch.float64)), ValueError,
         r"null_context must have shape \(3,\)"),
        (lambda: flow.guided(1.0, torch.zeros(1, 3, dtype=torch.float64)), ValueError,
         r"null_context must have shape \(3,\)"),
        (lambda: flow.guided(1.0, torch.zeros(3, dtype=torch.long)), TypeError, "floating dtype"),
        (lambda: flow.guided(1.0, torch.zeros(3)), TypeError, "null_context is float32 but the velocity computes in "
                                                               "float64"),
        (lambda: flow.guided(1.0, torch.tensor([0.0, float("nan"), 0.0], dtype=torch.float64)), ValueError,
         "NaN or inf"),
        (lambda: GuidedVelocity(nf.VelocityMLP(2), 1.0), ValueError, "needs a conditional velocity"),
        (lambda: GuidedVelocity(v, 1.0, context=2), ValueError, "reads a context of width 3 but context = 2"),
        (lambda: GuidedVelocity(lambda x, t, c: x, 1.0), ValueError, "for a plain callable, pass context=k"),
        (lambda: GuidedVelocity(3.0, 1.0), TypeError, "velocity must be a conditional velocity"),
        (lambda: GuidedVelocity(nf.VelocityMLP, 1.0), TypeError, "velocity must be a conditional velocity"),
        (lambda: GuidedVelocity(v, 1.0)(x, 0.5), ValueError, "needs the context c of the points"),
        (lambda: GuidedVelocity(v, 1.0)(x, 0.5, c[:2]), ValueError, "context has 2 rows for 3 points"),
        (lambda: GuidedVelocity(v, 1.0)(x, 0.5, c[:, :2]), ValueError, "context has 2 columns"),
        (lambda: nf.Flow([flow.guided(1.0)]).log_prob(x), ValueError, "conditional on a context of width 3"),
    ]
    for call, error, message in calls:
        with pytest.raises(error, match=message):
            call()
    before = [p.clone() for p in flow.parameters()]
    with pytest.raises(TypeError):
        flow.guided("3")
    assert all(torch.equal(a, b) for a, b in zip(before, flow.parameters()))  # nothing changed
