"""Continuous-time flows and flow matching, in float64 where it is about accuracy: the ODE's
round trip, its log-det against the autograd Jacobian of the whole solve, densities that
integrate to 1, Hutchinson's estimator against the exact trace, closed-form velocities (a point
and a Gaussian as targets) and the solver settings."""

import math

import pytest
import torch

import nflesson as nf
from nflesson.continuous import velocity_and_divergence
from cases import autograd_log_abs_det, randomize, real_points

TIGHT = dict(rtol=1e-8, atol=1e-8)


@pytest.fixture(autouse=True)
def _one_thread():
    """Solve and differentiate on one thread, as the lessons and training do (many tiny
    operations: two threads of a busy 2-core machine would wait for each other)."""
    with nf.threads.one_thread():
        yield


def random_flow(dim=2, scale=0.3, hidden=16, **solver):
    """A ContinuousFlow with a random (non-zero) velocity: it moves points by a few units."""
    torch.manual_seed(0)
    return nf.ContinuousFlow(dim, randomize(nf.VelocityMLP(dim, hidden=hidden).double(), scale), **solver)


def gaussian_velocity(mean, std):
    """The exact flow-matching velocity from N(0, I) to N(mean, diag(std^2)) on straight paths:
    x_t = (1 - t) z + t x is N(t mean, s_t^2) with s_t^2 = (1 - t)^2 + t^2 std^2, and
    E[x - z | x_t] = mean + (t std^2 - (1 - t)) / s_t^2 (x_t - t mean). Its flow is
    x_t(z) = t mean + s_t z."""
    mean, std = torch.as_tensor(mean, dtype=torch.float64), torch.as_tensor(std, dtype=torch.float64)

    def velocity(x, t):
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1)
        variance = (1 - t) ** 2 + t**2 * std**2
        return mean + (t * std**2 - (1 - t)) / variance * (x - t * mean)

    return velocity


def test_round_trip_through_the_ode_at_tight_tolerance():
    flow = random_flow(**TIGHT)
    z = real_points(64, 2)
    x, log_det = flow(z)
    assert (x - z).abs().max() > 1.0  # it moves points
    back, log_det_back = flow.inverse(x)
    assert torch.allclose(back, z, atol=1e-6, rtol=0)
    assert torch.allclose(log_det_back, -log_det, atol=1e-6, rtol=0)


@pytest.mark.parametrize("dim, direction", [(1, "forward"), (2, "inverse"), (3, "forward")])
def test_log_det_matches_the_autograd_jacobian_of_the_whole_solve(dim, direction):
    flow = random_flow(dim, rtol=1e-9, atol=1e-9)
    call = flow if direction == "forward" else flow.inverse
    points = real_points(2, dim)
    log_det = call(points)[1]
    assert log_det.shape == (2,) and log_det.abs().max() > 0.02
    assert torch.allclose(log_det, autograd_log_abs_det(call, points), atol=1e-6, rtol=0)


def test_density_integrates_to_one_on_a_grid():
    flow = nf.Flow([random_flow(scale=0.25, method="rk4", steps=10)]).double()
    ticks = torch.linspace(-8, 8, 81, dtype=torch.float64)
    points = torch.cartesian_prod(ticks, ticks)
    with torch.no_grad():
        density = flow.log_prob(points).exp()
    cell = (ticks[1] - ticks[0]) ** 2
    assert density.sum().item() * cell == pytest.approx(1.0, abs=2e-3)
    line = nf.Flow([random_flow(1, scale=0.5, rtol=1e-8, atol=1e-8)]).double()
    xs = torch.linspace(-12, 12, 2001, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        assert line.log_prob(xs).exp().sum().item() * (xs[1, 0] - xs[0, 0]).item() == pytest.approx(1.0, abs=1e-6)


def test_hutchinson_estimate_agrees_with_the_exact_trace_in_expectation():
    torch.manual_seed(0)
    velocity = randomize(nf.VelocityMLP(3, hidden=16).double(), 0.5)
    x = real_points(5, 3).repeat(4000, 1)
    _, exact = velocity_and_divergence(velocity, x, 0.4)
    noise = nf.continuous.rademacher(x.shape, dtype=x.dtype)
    _, estimates = velocity_and_divergence(velocity, x, 0.4, noise)
    exact, estimates = exact.reshape(4000, 5), estimates.reshape(4000, 5)
    assert torch.allclose(exact, exact[0].expand(4000, 5))
    spread = estimates.std(0)
    assert (spread > 0.05).all()  # single probes are off: it is an estimate
    assert ((estimates.mean(0) - exact[0]).abs() < 4 * spread / math.sqrt(4000)).all()


def test_hutchinson_log_det_is_an_unbiased_estimate_of_the_exact_one():
    flow = random_flow(3, scale=0.4, method="rk4", steps=8, divergence="hutchinson")
    assert not flow.exact and "hutchinson (an estimate)" in repr(flow)
    z = real_points(4, 3).repeat(1500, 1)
    torch.manual_seed(1)
    with torch.no_grad():
        estimates = flow(z)[1].reshape(1500, 4)
        with flow.solver(divergence="exact"):
            assert flow.exact
            exact = flow(z[:4])[1]
    assert not flow.exact  # the block restored the estimator
    spread = estimates.std(0)
    assert (spread > 0.01).all()
    assert ((estimates.mean(0) - exact).abs() < 4 * spread / math.sqrt(1500)).all()


@pytest.mark.parametrize("sigma_min", [0.0, 0.1])
def test_flow_matching_loss_is_zero_for_the_exact_velocity_to_a_point(sigma_min):
    """Data at one point c: x_t = (1 - (1 - s) t) z + t c determines z, so the conditional
    target x - (1 - s) z is a function of (x_t, t): the exact velocity matches it everywhere."""
    c = torch.tensor([2.0, -1.0], dtype=torch.float64)
    shrink = 1 - sigma_min

    def exact(x, t):
        t = t.reshape(-1, 1)
        return c - shrink * (x - t * c) / (1 - shrink * t)

    generator = torch.Generator().manual_seed(0)
    z = torch.randn(1000, 2, generator=generator, dtype=torch.float64)
    t = torch.rand(1000, generator=generator, dtype=torch.float64) * 0.99
    x = c.expand(1000, 2)
    assert nf.flow_matching_loss(exact, x, z, t, sigma_min) < 1e-20
    assert nf.flow_matching_loss(lambda x, t: torch.zeros_like(x), x, z, t, sigma_min) > 1.0


def test_gaussian_to_gaussian_exact_velocity_carries_the_base_to_the_target_and_minimises_the_loss():
    mean, std = torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64)
    velocity = gaussian_velocity(mean, std)
    flow = nf.Flow([nf.ContinuousFlow(2, velocity, **TIGHT)]).double()
    z = real_points(16, 2)
    x, log_det = flow.layers[0](z)
    assert torch.allclose(x, mean + std * z, atol=1e-8)  # x_1(z) = mean + std z
    assert torch.allclose(log_det, std.log().sum().expand(16), atol=1e-8)
    gaussian = torch.distributions.Independent(torch.distributions.Normal(mean, std), 1)
    with torch.no_grad():
        assert torch.allclose(flow.log_prob(z), gaussian.log_prob(z), atol=1e-8)
    # the conditional loss at the exact velocity is the conditional variance left over,
    # E_t sum_i std_i^2 / s_t,i^2: the flow-matching loss against the exact velocity is 0
    n = 200_000
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    data = mean + std * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    t = torch.rand(n, generator=generator, dtype=torch.float64)
    loss = nf.flow_matching_loss(velocity, data, z, t)
    ts = torch.linspace(0, 1, 100_001, dtype=torch.float64).unsqueeze(-1)
    floor = torch.trapezoid((std**2 / ((1 - ts) ** 2 + ts**2 * std**2)).sum(-1), ts[:, 0])
    assert loss.item() == pytest.approx(floor.item(), rel=0.02)
    nudged = nf.flow_matching_loss(lambda x, t: velocity(x, t) + 0.3, data, z, t)
    assert nudged.item() == pytest.approx(loss.item() + 2 * 0.3**2, rel=0.02)


def test_a_fresh_flow_is_the_identity_and_counts_its_evaluations():
    flow = nf.ContinuousFlow(2)
    z = torch.randn(10, 2)
    x, log_det = flow(z)
    assert torch.allclose(x, z, atol=1e-6, rtol=0) and torch.equal(log_det, torch.zeros(10))
    assert flow.nfe > 0
    with flow.solver(method="rk4", steps=10):
        flow(z)
        assert flow.nfe == 40 and flow.method == "rk4"
        with flow.solver(steps=3):
            flow.inverse(z)
            assert flow.nfe == 12
        assert flow.steps == 10
    assert flow.method == "dopri5" and flow.steps is None
    with flow.solver(method="euler"):
        flow(z)
        assert flow.nfe == nf.continuous.FIXED_STEPS


def test_sampling_solves_for_the_points_alone_without_the_divergence():
    calls = []

    def velocity(x, t):
        calls.append(x.requires_grad)  # the divergence needs x to require grad; sampling does not
        return torch.stack([-x[:, 1], x[:, 0]], 1) * (1 + t)

    flow = nf.Flow([nf.ContinuousFlow(2, velocity, method="rk4", steps=8)]).double()
    torch.manual_seed(3)
    samples = flow.sample(50)
    assert len(calls) == 32 and not any(calls)
    torch.manual_seed(3)
    z = flow.base.sample((50,))
    with torch.no_grad():
        x, _ = flow(z)  # the forward map with its log-det: the same points
    assert torch.allclose(samples, x, atol=1e-12, rtol=0) and any(calls[32:])


def test_adaptive_solver_spends_more_evaluations_at_tighter_tolerance():
    flow = random_flow()
    z = real_points(32, 2)
    counts = []
    for tolerance in (1e-3, 1e-6, 1e-9):
        with flow.solver(rtol=tolerance, atol=tolerance), torch.no_grad():
            flow(z)
        counts.append(flow.nfe)
    assert counts[0] < counts[1] < counts[2]


def test_stages_run_along_the_ode_time_with_their_cumulative_log_dets():
    flow = random_flow(**TIGHT)
    z = real_points(8, 2)
    stages = flow.stages(time_steps=4)
    assert (stages.count, stages.end) == (4, 1)
    points, log_dets = stages.points(z, log_det=True)
    assert len(points) == len(log_dets) == 5
    assert torch.equal(points[0], z) and torch.equal(log_dets[0], torch.zeros(8, dtype=torch.float64))
    with torch.no_grad():
        x, log_det = flow(z)
        half, half_log_det = flow.trajectory(z, [0.0, 0.5], log_det=True)
    assert torch.allclose(points[-1], x, atol=1e-7) and torch.allclose(log_dets[-1], log_det, atol=1e-7)
    assert torch.allclose(points[2], half[-1], atol=1e-7) and torch.allclose(log_dets[2], half_log_det[-1], atol=1e-7)
    back, back_log_dets = stages.points(x, inverse=True, log_det=True)
    assert torch.equal(back[0], x) and torch.allclose(back[-1], z, atol=1e-7)
    assert torch.allclose(back_log_dets[-1], -log_det, atol=1e-7)
    start, start_log_det = stages.back_from(2, points[2])
    assert torch.allclose(start, z, atol=1e-7) and torch.allclose(start_log_det, -log_dets[2], atol=1e-7)
    assert torch.equal(stages.back_from(0, x)[0], x)
    assert [stages.name(t) for t in (0, 0.5, 1)] == ["the base", "along the ODE", "the data: the ODE solved to t = 1"]


def test_stages_solve_with_their_own_solver_settings():
    flow = random_flow(method="rk4", steps=8)
    stages = flow.stages(time_steps=2, solver=dict(steps=3))
    stages.points(real_points(4, 2))
    assert flow.nfe == 4 * (2 + 2) and flow.steps == 8  # 3 steps per unit of time: ceil(1.5) = 2 per half
    with pytest.raises(ValueError, match="time_steps"):
        flow.stages(time_steps=0)
    with pytest.raises(ValueError, match="method"):
        flow.stages(solver=dict(method="leapfrog"))


def test_trajectory_passes_through_the_forward_and_inverse_solves():
    flow = random_flow(rtol=1e-9, atol=1e-9)
    z = real_points(8, 2)
    times = torch.linspace(0, 1, 5)
    with torch.no_grad():
        path, log_dets = flow.trajectory(z, times, log_det=True)
        assert path.shape == (5, 8, 2) and log_dets.shape == (5, 8)
        assert torch.equal(path[0], z) and torch.equal(log_dets[0], torch.zeros(8, dtype=torch.float64))
        x, log_det = flow(z)
        assert torch.allclose(path[-1], x, atol=1e-8) and torch.allclose(log_dets[-1], log_det, atol=1e-8)
        back = flow.trajectory(x, times.flip(0))
        assert torch.allclose(back.flip(0), path, atol=1e-7)
    with flow.solver(method="rk4", steps=4), torch.no_grad():
        flow.trajectory(z, [0.0, 0.1, 1.0])
        assert flow.nfe == 4 * (1 + 4)  # at least one step to 0.1, ceil(4 * 0.9) = 4 after it


def test_maximum_likelihood_through_the_ode_trains_the_velocity():
    torch.manual_seed(0)
    flow = nf.Flow([nf.ContinuousFlow(2, nf.VelocityMLP(2, hidden=16), method="rk4", steps=4)])
    target = nf.data.get("gaussian2d")
    history = nf.fit(flow, target, steps=30, batch_size=64, lr=1e-2, progress=False, grid_size=8, n_samples=20)
    assert history.losses[-1] < history.losses[0] - 1
    assert history.snapshots[-1].log_density.shape == (8, 8)
    weight = flow.layers[0].velocity.net[0].weight
    assert not torch.equal(history.snapshots[0].state["layers.0.velocity.net.0.weight"], weight)


def test_float32_flow_and_a_velocity_without_parameters():
    flow = nf.ContinuousFlow(2, lambda x, t: -x, method="rk4", steps=20)
    x, log_det = flow(torch.ones(3, 2))
    assert x.dtype == torch.float32
    assert torch.allclose(x, torch.full((3, 2), math.exp(-1)), atol=1e-5)  # dx/dt = -x
    assert torch.allclose(log_det, torch.full((3,), -2.0), atol=1e-5)  # div v = -2
    still = nf.ContinuousFlow(2, lambda x, t: torch.ones_like(x).detach())
    assert torch.allclose(still(torch.zeros(2, 2))[0], torch.ones(2, 2))


@pytest.mark.parametrize("call, message", [
    (lambda: nf.ContinuousFlow(0), "dim"),
    (lambda: nf.ContinuousFlow(2, velocity="fast"), "callable"),
    (lambda: nf.ContinuousFlow(2, nf.VelocityMLP(3)), "dim = 3 but the flow has dim = 2"),
    (lambda: nf.ContinuousFlow(2, method="rk45"), "method must be one of"),
    (lambda: nf.ContinuousFlow(2, steps=10), "steps is for the fixed-step methods"),
    (lambda: nf.ContinuousFlow(2, method="rk4", steps=0), "steps"),
    (lambda: nf.ContinuousFlow(2, rtol=0), "rtol"),
    (lambda: nf.ContinuousFlow(2, atol=-1.0), "atol"),
    (lambda: nf.ContinuousFlow(2, divergence="trace"), "divergence must be"),
    (lambda: nf.VelocityMLP(2, frequencies=-1), "frequencies"),
    (lambda: nf.VelocityMLP(2, hidden=0), "hidden"),
    (lambda: nf.ContinuousFlow(2)(torch.zeros(3, 3)), "columns"),
    (lambda: nf.ContinuousFlow(2).trajectory(torch.zeros(3, 2), [0.0]), "at least two"),
    (lambda: nf.ContinuousFlow(2).trajectory(torch.zeros(3, 2), [0.0, 2.0]), "in \\[0, 1\\]"),
    (lambda: nf.ContinuousFlow(2).trajectory(torch.zeros(3, 2), [0.0, 0.5, 0.2]), "strictly"),
])
def test_bad_arguments_say_what_is_wrong(call, message):
    with pytest.raises(TypeError if message == "callable" else ValueError, match=message):
        call()


def test_failed_solver_change_leaves_the_settings_alone():
    flow = nf.ContinuousFlow(2, method="rk4", steps=7)
    with pytest.raises(ValueError):
        flow.set_solver(method="dopri5", steps=3)
    assert (flow.method, flow.steps) == ("rk4", 7)
    assert flow.set_solver(method="dopri5") is flow and flow.steps is None


def test_a_solve_leaves_the_thread_count_to_the_caller():
    flow = nf.ContinuousFlow(2, method="rk4", steps=2)
    threads = torch.get_num_threads()
    seen = []
    flow.velocity.register_forward_hook(lambda *args: seen.append(torch.get_num_threads()))
    flow(torch.zeros(3, 2))
    assert set(seen) == {threads} and torch.get_num_threads() == threads


def test_fixed_steps_per_unit_of_time_hold_for_float32_times():
    """steps=20 over 21 float32 times 0.05 apart is one RK4 step per gap (4 evaluations each),
    not two: a gap rounded a hair above 0.05 does not take an extra step."""
    flow = nf.ContinuousFlow(2, method="rk4", steps=20)
    flow.trajectory(torch.zeros(3, 2), torch.linspace(0, 1, 21))
    assert flow.nfe == 80
