"""Training: maximum likelihood and reverse KL converge where the answer is known, histories
record what they promise, runs repeat exactly, and failures speak."""

import math

import pytest
import torch

import nflesson as nf


def test_linear_flow_recovers_the_articles_gaussian():
    target = nf.data.get("gaussian2d")
    flow = nf.flows.linear(2)
    history = nf.fit(flow, target, steps=1000, batch_size=512, lr=0.1, progress=False)
    with torch.no_grad():
        w, b = flow.layers[0].weight, flow.layers[0].bias
        assert torch.allclose(b, torch.tensor([5.0, 7.0]), atol=0.15)
        assert torch.allclose(w.T @ w, torch.tensor([[2.0, 0.7], [0.7, 1.0]]), atol=0.15)
    assert history.losses[-1] < history.losses[0] - 5
    assert abs(history.snapshots[-1].loss - target.entropy()) < 0.05


def test_1d_affine_fit_matches_the_closed_form_mle():
    data = nf.data.get("gaussian1d").sample(400, generator=torch.Generator().manual_seed(1))
    flow = nf.Flow([nf.Affine(1)])
    nf.fit(flow, data, steps=1500, batch_size=400, lr=0.05, progress=False)
    layer = flow.layers[0]
    assert abs(layer.shift.item() - data.mean().item()) < 1e-3
    assert abs(layer.log_scale.exp().item() - data.std(unbiased=False).item()) < 1e-3


def test_history_records_losses_snapshots_and_grid():
    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    history = nf.fit(flow, nf.data.get("moons"), steps=20, batch_size=32, snapshot_every=5, progress=False,
                     grid_size=12, n_samples=50)
    assert len(history.losses) == 20 and history.objective == "maximum likelihood"
    assert [s.step for s in history.snapshots] == [0, 5, 10, 15, 20]
    assert history.snapshots[0].samples.shape == (50, 2) and history.target_samples.shape == (50, 2)
    assert history.snapshots[0].log_density.shape == (12, 12)
    assert history.bounds == nf.data.get("moons").bounds
    assert not torch.equal(history.snapshots[0].state["layers.1.conditioner.4.weight"],
                           history.snapshots[-1].state["layers.1.conditioner.4.weight"])
    assert history.snapshots[0].loss == pytest.approx(history.losses[0])


def test_snapshot_density_is_the_flow_density_on_the_grid():
    flow = nf.flows.maf(2, layers=2, hidden=8)
    history = nf.fit(flow, nf.data.get("banana"), steps=5, batch_size=16, progress=False, grid_size=7)
    xs, ys = history.grid
    point = torch.tensor([[xs[2].item(), ys[5].item()]])
    assert history.snapshots[-1].log_density[5, 2].item() == pytest.approx(flow.log_prob(point).item(), abs=1e-5)


def test_snapshots_are_drawn_when_first_read_from_their_own_parameters():
    """Training copies the parameters at each snapshot step; the samples and the density are drawn
    from that copy when first read, so they do not change when the flow trains on afterwards."""
    torch.manual_seed(0)
    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    history = nf.fit(flow, nf.data.get("moons"), steps=20, batch_size=32, snapshot_every=10, progress=False,
                     grid_size=9, n_samples=40)
    middle = history.snapshots[1]
    nf.fit(flow, nf.data.get("moons"), steps=20, batch_size=32, progress=False, seed=1)  # the flow moves on
    samples, log_density = middle.samples, middle.log_density
    assert middle.samples is samples  # drawn once, then kept
    flow.load_state_dict(middle.state)
    xs, ys = history.grid
    assert log_density[4, 7].item() == pytest.approx(flow.log_prob(torch.tensor([[xs[7], ys[4]]])).item(), abs=1e-6)
    torch.manual_seed(0)  # the run's seed: its first draw is the snapshots' base noise
    assert torch.allclose(samples, flow.sample(40), atol=1e-6)


def test_training_repeats_exactly_with_the_same_seed():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        flow = nf.flows.realnvp(2, layers=2, hidden=8)
        runs.append(nf.fit(flow, nf.data.get("eight_gaussians"), steps=15, batch_size=64, progress=False).losses)
    assert runs[0] == runs[1]


def test_tensor_data_with_a_batch_larger_than_the_data_uses_it_all():
    data = torch.randn(30, 2) * 2 + 1
    history = nf.fit(nf.flows.linear(2), data, steps=3, batch_size=100, progress=False)
    assert history.target_samples.shape == (30, 2)
    lo, hi = history.bounds[0]
    assert lo < data[:, 0].min().item() and hi > data[:, 0].max().item()


def test_transform_gives_every_minibatch_fresh_noise_and_repeats_with_the_seed():
    data = torch.arange(40.0).reshape(20, 2)
    runs = []
    for _ in range(2):
        seen = []

        def record(x):
            seen.append((x, nf.dequantize(x)))
            return seen[-1][1]

        history = nf.fit(nf.flows.linear(2), data, steps=5, batch_size=8, progress=False, transform=record)
        runs.append((history.losses, seen))
    (losses, seen), (losses_again, seen_again) = runs
    assert len(seen) == 6  # five steps and the final loss
    assert all(((y >= x) & (y < x + 1)).all() for x, y in seen)
    noises = [y - x for x, y in seen]
    assert not torch.equal(noises[0], noises[1])
    assert losses == losses_again and all(torch.equal(a[1], b[1]) for a, b in zip(seen, seen_again))
    assert torch.equal(history.target_samples, data)  # the reference points are not transformed


def test_flow_matching_applies_the_transform_to_every_minibatch():
    data = torch.arange(40.0).reshape(20, 2)
    seen = []

    def record(x):
        seen.append(x)
        return nf.dequantize(x) / 10

    nf.fit_flow_matching(nf.VelocityMLP(2, hidden=8), data, steps=4, batch_size=8, frames=1, progress=False,
                         transform=record)
    assert len(seen) == 5 and all(x.shape == (8, 2) for x in seen)  # four steps and the final loss
    with pytest.raises(ValueError, match="the output of transform"):
        nf.fit_flow_matching(nf.VelocityMLP(2, hidden=8), data, steps=2, progress=False, transform=lambda x: x[:, :1])
    with pytest.raises(TypeError, match="transform"):
        nf.fit_flow_matching(nf.VelocityMLP(2, hidden=8), data, steps=2, progress=False, transform="dequantize")


def test_fit_above_two_dimensions_keeps_samples_but_no_density_grid():
    flow = nf.flows.glow(64, layers=1, hidden=8)
    history = nf.fit(flow, torch.randn(50, 64), steps=3, batch_size=16, progress=False, n_samples=10)
    assert history.grid is None and all(s.log_density is None for s in history.snapshots)
    assert history.snapshots[-1].samples.shape == (10, 64) and len(history.bounds) == 64


def test_non_finite_loss_names_the_step_and_what_to_try():
    with pytest.raises(nf.TrainingError, match="became nan at step 0; .* Try a smaller lr"):
        nf.fit(nf.flows.linear(2), torch.randn(100, 2), transform=lambda x: x * float("nan"), steps=5,
               batch_size=100, progress=False)


def test_reverse_kl_fits_an_energy_and_bounds_the_kl():
    energy = nf.data.get("u1")
    torch.manual_seed(0)
    flow = nf.flows.iaf(2, layers=4, hidden=32)
    history = nf.fit_reverse_kl(flow, energy, steps=400, batch_size=256, lr=3e-3, progress=False, grid_size=10)
    kl = history.snapshots[-1].loss + energy.log_normalizer()
    assert history.objective == "reverse KL" and history.target_samples.shape == (1000, 2)
    assert 0 < kl + 0.05 and kl < 0.3, kl
    assert history.losses[-1] < history.losses[0]


def test_reverse_kl_with_a_plain_callable_needs_bounds():
    def log_density(x):
        return -0.5 * (x - 1).square().sum(-1)

    with pytest.raises(ValueError, match="bounds"):
        nf.fit_reverse_kl(nf.flows.linear(2), log_density, steps=2, progress=False)
    flow = nf.flows.linear(2)
    history = nf.fit_reverse_kl(flow, log_density, steps=300, lr=0.05, progress=False, bounds=((-3, 5), (-3, 5)))
    assert history.target_samples is None
    assert torch.allclose(flow.layers[0].bias, torch.ones(2), atol=0.1)
    assert history.snapshots[-1].loss == pytest.approx(-math.log(2 * math.pi), abs=0.05)


def test_progress_bar_can_be_switched_off(capsys):
    nf.fit(nf.flows.linear(2), nf.data.get("moons"), steps=3, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    nf.fit(nf.flows.linear(2), nf.data.get("moons"), steps=3, progress=True)
    assert "maximum likelihood" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps"), (dict(batch_size=0), "batch_size"), (dict(lr=0), "lr"),
    (dict(snapshot_every=-1), "snapshot_every"),
])
def test_fit_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nf.fit(nf.flows.linear(2), nf.data.get("moons"), progress=False, **kwargs)


def test_fit_refuses_data_of_another_dimension():
    with pytest.raises(ValueError, match="the data has dim = 1 but the flow has dim = 2"):
        nf.fit(nf.flows.linear(2), nf.data.get("mixture1d"), steps=2, progress=False)
    with pytest.raises(ValueError, match="3 columns"):
        nf.fit(nf.flows.linear(2), torch.zeros(10, 3), steps=2, progress=False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        nf.fit(nf.Flow([nf.Exp()], dim=2), torch.ones(10, 2), steps=2, progress=False)
    history = nf.fit(nf.flows.linear(2), torch.stack([torch.randn(10), torch.ones(10)], 1), steps=2, progress=False)
    assert history.bounds[1] == (0.0, 2.0)  # a column that does not vary gets a box of width 2 around it


def test_adam_is_fused_where_torch_has_the_kernel_and_plain_where_it_refuses_it(monkeypatch):
    """CPU tensors have Adam's fused kernel since torch 2.4; before (and on some devices) Adam
    raises RuntimeError for fused=True, and nf.fit must train with the default loop instead."""
    from nflesson.train import optimizer_and_schedule

    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    optimizer, _ = optimizer_and_schedule(flow.parameters(), 1e-3, 10)
    assert optimizer.defaults["fused"] is True  # this torch (>= 2.4) on CPU
    assert len(optimizer.param_groups[0]["params"]) == len(list(flow.parameters()))

    adam = torch.optim.Adam

    def adam_without_a_cpu_kernel(params, *args, fused=None, **kwargs):  # torch 2.2 and 2.3 on CPU
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                               "supported devices: ['cuda']")
        return adam(params, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", adam_without_a_cpu_kernel)
    optimizer, _ = optimizer_and_schedule(flow.parameters(), 1e-3, 10)  # a generator, used once
    assert not optimizer.defaults["fused"]
    assert len(optimizer.param_groups[0]["params"]) == len(list(flow.parameters()))
    history = nf.fit(flow, nf.data.get("moons"), steps=20, batch_size=64, progress=False)
    assert len(history.losses) == 20 and all(math.isfinite(loss) for loss in history.losses)


def test_the_training_loops_share_their_settings_and_check_them_in_one_place():
    from nflesson.train import TrainingSettings

    moons = nf.data.get("moons")
    for loop, target in ((nf.fit, moons), (nf.fit_reverse_kl, nf.data.get("u1")), (nf.fit_flow_matching, moons)):
        flow = nf.Flow([nf.ContinuousFlow(2)]) if loop is nf.fit_flow_matching else nf.flows.linear(2)
        with pytest.raises(TypeError, match=rf"{loop.__name__}\(\) got unknown settings \['stepz'\]; its settings are"):
            loop(flow, target, stepz=10)
        history = loop(flow, target, steps=4, batch_size=8, snapshot_every=2, progress=False, grid_size=5,
                       n_samples=7, seed=1)
        assert len(history.losses) == 4 and [s.step for s in history.snapshots] == [0, 2, 4]
        assert history.snapshots[0].samples.shape == (7, 2) and history.snapshots[0].log_density.shape == (5, 5)
    assert TrainingSettings(steps=100).every == 2 and TrainingSettings(steps=10, snapshot_every=3).every == 3
    assert TrainingSettings.of("fit_flow_matching", {"steps": 100}, frames=25).every == 4
    for bad in (dict(steps=0), dict(batch_size=2.5), dict(lr=-1), dict(snapshot_every=0), dict(grid_size=0),
                dict(n_samples=0), dict(frames=0)):
        with pytest.raises(TypeError if bad == dict(batch_size=2.5) else ValueError, match=next(iter(bad))):
            TrainingSettings(**bad)


def test_reverse_kl_above_2d_needs_no_plotting_bounds():
    flow = nf.flows.linear(3)
    history = nf.fit_reverse_kl(flow, lambda x: -0.5 * x.square().sum(-1), steps=3, progress=False)
    assert history.grid is None and len(history.losses) == 3


def small_continuous_flow():
    torch.manual_seed(0)
    return nf.Flow([nf.ContinuousFlow(2, nf.VelocityMLP(2, hidden=32), method="rk4", steps=10)])


def test_flow_matching_records_a_history_the_players_can_show(tmp_path):
    flow = small_continuous_flow()
    history = nf.fit_flow_matching(flow, nf.data.get("moons"), steps=50, batch_size=64, progress=False,
                                   grid_size=9, n_samples=40)
    assert history.objective == "flow matching" and len(history.losses) == 50
    assert [s.step for s in history.snapshots] == [0, 2, 4] + list(range(6, 50, 2)) + [50]  # 25 frames and the last
    assert history.snapshots[0].samples.shape == (40, 2) and history.snapshots[-1].log_density.shape == (9, 9)
    assert history.bounds == nf.data.get("moons").bounds and history.target_samples.shape == (40, 2)
    ode = flow.layers[0]
    assert (ode.method, ode.steps) == ("rk4", 10)  # the snapshots' solver was for the snapshots only
    xs, ys = history.grid
    point = torch.tensor([[xs[3].item(), ys[6].item()]])
    with torch.no_grad(), ode.solver(steps=4):
        assert history.snapshots[-1].log_density[6, 3].item() == pytest.approx(flow.log_prob(point).item(), abs=1e-5)
    first = history.snapshots[0]
    assert torch.allclose(first.log_density.exp(), torch.distributions.Normal(0, 1).log_prob(
        torch.stack(torch.meshgrid(*history.grid, indexing="xy"), -1)).sum(-1).exp())  # a fresh flow is the base
    assert history.save_gif(tmp_path / "training.gif").stat().st_size > 0


def test_flow_matching_learns_a_gaussian_and_repeats_with_its_seed():
    target = nf.data.get("gaussian2d")
    runs = []
    for _ in range(2):
        flow = small_continuous_flow()
        history = nf.fit_flow_matching(flow, target, steps=400, batch_size=256, progress=False, grid_size=5,
                                       n_samples=10)
        runs.append(history.losses)
    assert runs[0] == runs[1]
    assert sum(runs[0][-50:]) / 50 < sum(runs[0][:50]) / 50 - 5
    test = target.sample(4000, generator=torch.Generator().manual_seed(1))
    assert nf.gap(flow, target, test).nats < 0.05


def test_flow_matching_takes_a_continuous_flow_or_a_velocity_and_tensor_data():
    data = torch.randn(200, 2) * 0.5 + 1
    velocity = nf.VelocityMLP(2, hidden=8)
    history = nf.fit_flow_matching(velocity, data, steps=5, batch_size=32, progress=False, grid_size=4, sigma_min=0.1)
    assert "layers.0.velocity.net.0.weight" in history.snapshots[-1].state
    assert velocity.net[-1].weight.abs().sum() > 0  # trained in place
    ode = nf.ContinuousFlow(2, nf.VelocityMLP(2, hidden=8))
    nf.fit_flow_matching(ode, data, steps=5, batch_size=32, progress=False, grid_size=4,
                         snapshot_solver={"method": "euler", "steps": 2})
    assert ode.method == "dopri5"


@pytest.mark.parametrize("call, message", [
    (lambda: nf.fit_flow_matching(nf.flows.realnvp(2), nf.data.get("moons"), progress=False), "ContinuousFlow"),
    (lambda: nf.fit_flow_matching(nf.Flow([nf.ContinuousFlow(2), nf.Affine(2)]), nf.data.get("moons")),
     "ContinuousFlow"),
    (lambda: nf.fit_flow_matching(nf.ContinuousFlow(2), nf.data.get("moons"), sigma_min=1.0), "sigma_min"),
    (lambda: nf.fit_flow_matching(nf.ContinuousFlow(2), nf.data.get("moons"), snapshot_solver={"method": "rk45"}),
     "method"),
    (lambda: nf.fit_flow_matching(nf.ContinuousFlow(2), nf.data.get("mixture1d")), "dim = 1 but the flow has dim = 2"),
    (lambda: nf.fit_flow_matching(nf.ContinuousFlow(2), nf.data.get("moons"), steps=0), "steps"),
])
def test_flow_matching_bad_arguments(call, message):
    with pytest.raises(TypeError if message == "ContinuousFlow" else ValueError, match=message):
        call()
