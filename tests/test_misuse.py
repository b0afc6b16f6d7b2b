"""Misuse of the flows and the training loops, as a careless learner commits it: every mistake
gets a TypeError or ValueError in nflesson's words before anything changes, nothing is poisoned,
and a stopped run keeps what it recorded (the rule is written in nflesson/checks.py)."""

import copy
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nflesson as nf
from cases import real_points

FACTORIES = {
    "linear": lambda: nf.flows.linear(2),
    "planar": lambda: nf.flows.planar(2, layers=3),
    "radial": lambda: nf.flows.radial(2, layers=3),
    "realnvp": lambda: nf.flows.realnvp(2, layers=2, hidden=8),
    "maf": lambda: nf.flows.maf(2, layers=2, hidden=8),
    "iaf": lambda: nf.flows.iaf(2, layers=2, hidden=8),
    "nsf": lambda: nf.flows.nsf(2, layers=2, hidden=8, bins=4),
    "nsf_autoregressive": lambda: nf.flows.nsf(2, layers=2, hidden=8, bins=4, autoregressive=True),
    "glow": lambda: nf.flows.glow(2, layers=2, hidden=8),
    "spline": lambda: nf.Flow([nf.RationalQuadraticSpline(2, bins=4)]),
    "continuous": lambda: nf.Flow([nf.ContinuousFlow(2, nf.VelocityMLP(2, hidden=8), method="rk4", steps=4)]),
}


def make(name, dtype=torch.float32):
    torch.manual_seed(0)
    flow = FACTORIES[name]().to(dtype)
    flow.eval()
    return flow


def snapshot(flow):
    return {k: v.clone() for k, v in flow.state_dict().items()}


def unchanged(flow, before):
    after = flow.state_dict()
    return before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


# --- one rule for dtypes and empty batches, for every flow --------------------------------------

@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_points_of_another_dtype_are_refused_naming_both(name):
    for flow_dtype, point_dtype, fix in ((torch.float32, torch.float64, ".float()"),
                                         (torch.float64, torch.float32, ".double()")):
        flow = make(name, flow_dtype)
        x = torch.zeros(3, 2, dtype=point_dtype)
        for call in (flow.log_prob, flow.forward, flow.inverse, lambda p: flow.layers[0](p)):
            with pytest.raises(TypeError, match=rf"is {str(point_dtype)[6:]} but this .* computes in "
                                                rf"{str(flow_dtype)[6:]}.*{fix.replace('(', '[(]').replace(')', '[)]')}"):
                call(x)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_an_empty_batch_gives_an_empty_result(name):
    flow = make(name)
    empty = torch.zeros(0, 2)
    assert flow.log_prob(empty).shape == (0,)
    assert [p.shape for p in flow.trace(empty)] == [(0, 2)] * (len(flow.layers) + 1)
    for call in (flow.forward, flow.inverse):
        points, log_det = call(empty)
        assert points.shape == (0, 2) and log_det.shape == (0,)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_as_distribution_behaves_as_torch_documents(name):
    flow = make(name, torch.float64)
    d = flow.as_distribution()
    assert d.batch_shape == () and d.event_shape == (2,)
    torch.manual_seed(1)
    assert d.sample().shape == (2,) and d.sample((3, 4)).shape == (3, 4, 2) and d.rsample((0,)).shape == (0, 2)
    x = real_points(6, 2)
    assert d.log_prob(x[0]).shape == () and d.log_prob(x.reshape(2, 3, 2)).shape == (2, 3)
    torch.testing.assert_close(d.log_prob(x.reshape(2, 3, 2)).flatten(), flow.log_prob(x))
    # nothing is cached: after the parameters change, a point seen before is scored afresh
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05)
    torch.testing.assert_close(d.log_prob(x), flow.log_prob(x))


# --- poisoned state: ActNorm's initialisation -----------------------------------------------------

@pytest.mark.parametrize("first_batch, message", [
    (torch.zeros(0, 4), None),  # empty: an empty result, and still uninitialised
    (torch.randn(1, 4), "at least 2 points"),
    (torch.cat([torch.randn(7, 4), torch.full((1, 4), float("nan"))]), r"NaN or inf in 1 of its 8 rows \(rows 7\)"),
    (torch.randn(8, 4) * torch.tensor([1.0, 0.0, 1.0, 1.0]), r"coordinates \[1\] are constant"),
])
def test_actnorm_refuses_a_first_batch_it_cannot_use_and_stays_uninitialised(first_batch, message):
    torch.manual_seed(0)
    flow = nf.flows.glow(4, layers=2, hidden=8)
    torch.manual_seed(0)
    fresh = nf.flows.glow(4, layers=2, hidden=8)
    if message is None:
        assert flow.log_prob(first_batch).shape == (0,)
    else:
        with pytest.raises(ValueError, match=message):
            flow.log_prob(first_batch)
    actnorms = [m for m in flow.modules() if isinstance(m, nf.ActNorm)]
    assert not any(bool(m.initialized) for m in actnorms)
    good = torch.randn(16, 4, generator=torch.Generator().manual_seed(3))
    result = flow.log_prob(good)
    assert torch.isfinite(result).all() and torch.equal(result, fresh.log_prob(good))


# --- arguments refused before any state changes ----------------------------------------------------

PLANAR, TORCH_LINEAR = nf.Planar(2), torch.nn.Linear(2, 2)  # built here: building draws random numbers


@pytest.mark.parametrize("call, error, message", [
    (lambda: nf.flows.realnvp(-1), ValueError, "dim must be an integer >= 1, got -1"),
    (lambda: nf.flows.maf(2.0), TypeError, "dim must be an integer >= 1, got float"),
    (lambda: nf.flows.realnvp(1), ValueError, "realnvp needs dim >= 2"),
    (lambda: nf.flows.nsf(2, bound=float("inf")), ValueError, "bound must be a finite number, got inf"),
    (lambda: nf.flows.nsf(2, layers=0), ValueError, "layers must be an integer >= 1"),
    (lambda: nf.flows.realnvp(2, additive="yes"), TypeError, "additive must be True or False"),
    (lambda: nf.flows.glow(8, hidden=2.5), TypeError, "hidden must be an integer"),
    (lambda: nf.Flow(nf.Planar), TypeError, "Flow takes a list of nflesson Bijectors"),
    (lambda: nf.Flow([PLANAR, TORCH_LINEAR]), TypeError, "Flow takes nflesson Bijectors"),
    (lambda: nf.Flow([PLANAR], base=torch.distributions.Normal(0.0, 1.0)), ValueError,
     r"event shape \(2,\) and batch shape \(\), got event shape \(\) and batch shape \(\)"),
    (lambda: nf.Flow([PLANAR], base="normal"), TypeError, "base must be a torch.distributions"),
    (lambda: nf.Coupling(2, "affine"), TypeError, "transformer must be an elementwise transformer"),
    (lambda: nf.AffineCoupling(2, mask=3), TypeError, "mask must be"),
    (lambda: nf.MADE(3, order="abc"), TypeError, "order must be a permutation"),
    (lambda: nf.MADE(3, order=[0.0, 1.0, 2.0]), TypeError, "order must hold integers"),
    (lambda: nf.Permute(2.5), TypeError, "Permute needs a dim >= 1 or a permutation"),
    (lambda: nf.Inverse(TORCH_LINEAR), TypeError, "Inverse needs a nflesson.Bijector, got Linear"),
    (lambda: nf.ContinuousFlow(2, lambda x, t: x).trajectory(torch.zeros(3, 2), 1.0), TypeError,
     "times must be a sequence"),
    (lambda: nf.RationalQuadraticSpline(2, bound=float("nan")), ValueError, "bound must be a finite number"),
    (lambda: nf.AffineCoupling(2, max_log_scale=float("inf")), ValueError, "max_log_scale must be a finite"),
    (lambda: nf.VelocityMLP(2, frequencies=-1), ValueError, "frequencies must be an integer >= 0"),
    (lambda: nf.Coupling(2, nf.AffineTransformer), TypeError, r"must be an instance, e.g. AffineTransformer\(\)"),
    (lambda: nf.ContinuousFlow(2, nf.VelocityMLP), TypeError, r"must be an instance, e.g. VelocityMLP\(2\)"),
    (lambda: nf.ContinuousFlow(2, "fast"), TypeError, "velocity must be a callable"),
    (lambda: nf.AffineCoupling(2, mask=["a", "b"]), TypeError, "mask must be a sequence of 2 booleans"),
    (lambda: nf.Permute([True, False]), TypeError, "permutation of integers"),
    (lambda: nf.Planar.with_parameters(["a", "b"], [1.0, 2.0]), TypeError, "w must be a vector of numbers"),
    (lambda: nf.Planar.with_parameters([1.0, 0.0], [0.0, 1.0], b=True), TypeError, "b must be a number, got a bool"),
    (lambda: nf.Planar.with_parameters([], []), ValueError, r"w must be a vector, got shape \(0,\)"),
    (lambda: nf.Radial.with_parameters([0.0, 0.0], alpha="a", beta=0.0), TypeError, "alpha must be a number"),
])
def test_bad_constructor_arguments_are_refused_before_any_random_number_is_drawn(call, error, message):
    torch.manual_seed(0)
    state = torch.get_rng_state()
    with pytest.raises(error, match=message):
        call()
    assert torch.equal(torch.get_rng_state(), state)


def test_a_singular_linear_layer_says_so_in_both_directions():
    layer = nf.Linear(2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    for call, direction in ((layer.inverse, "inverse"), (layer.forward, "forward")):
        with pytest.raises(ValueError, match=f"Linear.{direction} needs an invertible weight W, but det W = 0"):
            call(torch.randn(3, 2))


def test_numpy_integers_are_integers():
    import numpy as np

    assert nf.Permute(np.int64(3)).permutation.tolist() == [2, 1, 0]
    assert nf.flows.realnvp(np.int64(2), layers=np.int32(2)).dim == 2


def test_points_with_nan_score_nan_and_points_at_infinity_score_minus_infinity():
    flow = make("realnvp")
    x = torch.tensor([[float("inf"), 0.0], [float("nan"), float("inf")], [0.5, -0.5]])
    log_p = flow.log_prob(x)
    assert log_p[0] == -float("inf") and torch.isnan(log_p[1]) and torch.isfinite(log_p[2])
    assert log_p[2] == flow.log_prob(x[2:])[0]


def test_scoring_without_gradients_leaves_actnorm_alone_and_a_failed_pass_initialises_nothing():
    torch.manual_seed(0)
    flow = nf.flows.glow(2, layers=1, hidden=8)
    actnorm = [m for m in flow.modules() if isinstance(m, nf.ActNorm)][0]
    x = MOONS.sample(50)
    nf.gap(flow, MOONS, x)  # a metric, without gradients: no initialisation
    flow.stages().points(x)
    assert not actnorm.initialized
    pixels = nf.Flow([nf.LogitPixels(17), nf.ActNorm(2)])  # the layers in the wrong order
    with pytest.raises(ValueError, match="LogitPixels.inverse needs pixels"):
        pixels.log_prob(torch.rand(20, 2) * 17)
    assert not pixels.layers[1].initialized and torch.equal(pixels.layers[1].shift, torch.zeros(2))
    flow.log_prob(x)  # with gradients, in training mode: the first step of fit
    assert actnorm.initialized


def test_stages_and_traces_check_their_flags_and_stage_numbers():
    flow, cnf = make("realnvp"), make("continuous")
    x = torch.zeros(3, 2)
    calls = [
        (lambda: flow.trace(x, inverse="no"), TypeError, "inverse must be True or False"),
        (lambda: flow.stages().points(x, log_det="yes"), TypeError, "log_det must be True or False"),
        (lambda: flow.stages(time_steps=-5), ValueError, "time_steps must be an integer >= 1"),
        (lambda: flow.stages(solver={"method": "rk4"}), ValueError, "solver is for a flow holding a ContinuousFlow"),
        (lambda: cnf.stages(solver="rk4"), TypeError, "solver must be a dict"),
        (lambda: flow.stages().back_from(3, x), ValueError, r"k must be a stage 0..2, got 3"),
        (lambda: flow.stages().back_from(-1, x), ValueError, "k must be an integer >= 0"),
        (lambda: cnf.stages(4).back_from(1.5, x), TypeError, "k must be an integer"),
        (lambda: cnf.layers[0].trajectory(x, [0.0, 1.0], log_det="yes"), TypeError, "log_det must be True or False"),
        (lambda: cnf.layers[0].trajectory(x, ["a", "b"]), TypeError, "times must be a sequence"),
    ]
    for call, error, message in calls:
        with pytest.raises(error, match=message):
            call()


def test_the_networks_and_the_flow_matching_loss_check_their_inputs():
    made, velocity = nf.MADE(2, hidden=8), nf.VelocityMLP(2, hidden=8)
    x = torch.zeros(5, 2)
    calls = [
        (lambda: made(torch.zeros(5, 3)), ValueError, "3 columns but this MADE has dim = 2"),
        (lambda: made(x.double()), TypeError, "x is float64 but this MADE computes in float32"),
        (lambda: velocity(x, torch.zeros(3)), ValueError, r"one time per point, shape \(5,\)"),
        (lambda: velocity(x, "a"), TypeError, "t must be a number"),
        (lambda: velocity(0.5, x), TypeError, "x must be a torch.Tensor"),
        (lambda: nf.flow_matching_loss("v", x, x, torch.zeros(5)), TypeError, "velocity must be a function"),
        (lambda: nf.flow_matching_loss(velocity, x, x.double(), torch.zeros(5)), TypeError, "z is float64"),
        (lambda: nf.flow_matching_loss(velocity, x[:0], x[:0], torch.zeros(0)), ValueError, "x is empty"),
        (lambda: nf.flow_matching_loss(velocity, x, x, torch.full((5,), 3.0)), ValueError, "times in \\[0, 1\\]"),
    ]
    for call, error, message in calls:
        with pytest.raises(error, match=message):
            call()


def test_as_distribution_checks_its_arguments_in_its_own_words():
    d = make("realnvp").as_distribution()
    with pytest.raises(TypeError, match=r"value must be a tensor of points \(..., 2\)"):
        d.log_prob([0.0, 0.0])
    with pytest.raises(TypeError, match="sample_shape must be a tuple of sizes such as"):
        d.sample(5)
    assert d.log_prob(torch.zeros(0, 2)).shape == (0,)


@pytest.mark.parametrize("velocity, error, message", [
    (lambda x, t: x[:, :1], ValueError, r"returned shape \(5, 1\) for points of shape \(5, 2\)"),
    (lambda x, t: x.sum(), ValueError, r"returned shape \(\) for points"),
    (lambda x, t: 0.0, TypeError, "must return a tensor, got float"),
])
def test_a_velocity_of_the_wrong_shape_is_named_before_the_solver_fails(velocity, error, message):
    flow = nf.ContinuousFlow(2, velocity, method="rk4", steps=2)
    for call in (flow.forward, lambda x: flow.trajectory(x, [0.0, 1.0])):
        with pytest.raises(error, match=message):
            call(torch.randn(5, 2))


# --- the training loops ------------------------------------------------------------------------------

MOONS = nf.data.get("moons")


def fit_quietly(*args, **kwargs):
    """Run a training loop with its warnings recorded; returns (history, messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = args[0](*args[1:], progress=False, **kwargs)
    return history, [str(w.message) for w in caught if issubclass(w.category, nf.TrainingWarning)]


def test_a_normal_noisy_run_is_quiet_and_a_blown_up_one_says_so_with_its_step_and_lr():
    history, messages = fit_quietly(nf.fit, nf.flows.realnvp(2, layers=2, hidden=16), MOONS, steps=200)
    assert messages == [] and history.notes == []
    history, messages = fit_quietly(nf.fit, nf.flows.realnvp(2, layers=2, hidden=16), MOONS, steps=200, lr=10)
    assert len(messages) == 2 and messages == history.notes, messages
    assert "the loss jumped to" in messages[0] and "at step 1 " in messages[0] and "lr = 10)" in messages[0]
    assert "above where it started" in messages[1] and "try lr = 1" in messages[1]


def test_reverse_kl_and_flow_matching_watch_their_losses_too():
    energy = nf.data.get("u1")
    _, messages = fit_quietly(nf.fit_reverse_kl, nf.flows.realnvp(2, layers=2, hidden=16), energy, steps=100)
    assert messages == []
    _, messages = fit_quietly(nf.fit_reverse_kl, nf.flows.realnvp(2, layers=2, hidden=16), energy, steps=100, lr=10)
    assert any("lr = 10" in m for m in messages)
    velocity = nf.VelocityMLP(2, hidden=16)
    _, messages = fit_quietly(nf.fit_flow_matching, velocity, MOONS, steps=100, frames=2)
    assert messages == []
    _, messages = fit_quietly(nf.fit_flow_matching, nf.VelocityMLP(2, hidden=16), MOONS, steps=100, lr=30, frames=2)
    assert any("lr = 30" in m for m in messages)


def stop_at(step):
    """A minibatch transform that presses Stop (KeyboardInterrupt) at the given step."""
    calls = []

    def transform(x):
        calls.append(1)
        if len(calls) == step + 1:
            raise KeyboardInterrupt
        return x
    return transform


def test_an_interrupted_run_returns_what_it_recorded_marked_and_noted():
    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    history, messages = fit_quietly(nf.fit, flow, MOONS, transform=stop_at(30), steps=100, snapshot_every=10)
    assert history.interrupted and len(history.losses) == 30
    assert [s.step for s in history.snapshots] == [0, 10, 20]
    assert messages == history.notes and "stopped at step 30 of 100" in messages[0]
    assert "interrupted" in repr(history) and not flow.training
    flow.load_state_dict(history.snapshots[-1].state)  # the snapshots are usable as they are


def test_a_non_finite_loss_raises_training_error_carrying_the_history_and_a_sound_flow():
    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    calls = []

    def poison(x):  # a finite loss until step 12, then NaN points
        calls.append(1)
        return x * float("nan") if len(calls) > 12 else x
    with pytest.raises(nf.TrainingError, match="the loss became nan at step 12; the flow keeps its parameters") as info:
        nf.fit(flow, MOONS, transform=poison, steps=50, snapshot_every=5, progress=False)
    history = info.value.history
    assert len(history.losses) == 12 and [s.step for s in history.snapshots] == [0, 5, 10]
    assert all(torch.isfinite(p).all() for p in flow.parameters()) and not flow.training
    assert nf.TrainingError is nf.train.TrainingError


def test_parameters_made_nan_by_a_step_are_put_back_to_the_last_snapshot():
    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    steps = []
    weight = flow.layers[0].conditioner[0].weight
    weight.register_hook(lambda grad: grad * float("nan") if len(steps) == 17 else grad)

    def count(x):
        steps.append(1)
        return x
    with pytest.raises(nf.TrainingError, match=r"put back to its last snapshot \(step 15\)") as info:
        nf.fit(flow, MOONS, transform=count, steps=50, snapshot_every=5, progress=False)
    assert all(torch.isfinite(p).all() for p in flow.parameters())
    assert unchanged(flow, info.value.history.snapshots[-1].state)


def test_training_data_is_checked_once_before_training():
    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    before = snapshot(flow)
    data = MOONS.sample(100)
    data[[3, 50]] = float("nan")
    calls = [
        (lambda: nf.fit(flow, data), ValueError, r"data has NaN or inf in 2 of its 100 rows \(rows 3, 50\)"),
        (lambda: nf.fit(flow, data.double()), TypeError, "data is float64 but this flow computes in float32"),
        (lambda: nf.fit(flow, torch.zeros(0, 2)), ValueError, "data is empty"),
        (lambda: nf.fit(flow, data.tolist()), TypeError, "data must be a tensor of points"),
        (lambda: nf.fit(flow, MOONS.sample(10)[:, :1]), ValueError, "1 columns but this flow has dim = 2"),
        (lambda: nf.fit(flow.layers[0], MOONS), TypeError, "fit trains an nflesson.Flow"),
        (lambda: nf.fit(flow, MOONS, transform="dequantize"), TypeError, "transform must be a function"),
        (lambda: nf.fit(flow, MOONS, seed=None), TypeError, "seed must be an integer >= 0"),
        (lambda: nf.fit(flow, MOONS, seed=-1), ValueError, "seed must be an integer >= 0"),
        (lambda: nf.fit(flow, MOONS, progress="no"), TypeError, "progress must be True or False"),
        (lambda: nf.fit(flow, MOONS, lr=float("inf")), ValueError, "lr must be a finite number"),
        (lambda: nf.fit(flow, MOONS, bounds=((-3, 3),)), ValueError, r"bounds must be a sequence of 2 \(low, high\) pairs"),
        (lambda: nf.fit(flow, MOONS, bounds=((3, -3), (0, 1))), ValueError, "must have low < high"),
        (lambda: nf.fit(flow, MOONS, bounds=((-3, float("inf")), (0, 1))), ValueError, "must be a finite number"),
        (lambda: nf.fit_reverse_kl(flow, "u1"), TypeError, "log_density must be a function"),
        (lambda: nf.fit_reverse_kl(flow, type(nf.data.get("u1"))), TypeError, "got the class Energy itself"),
        (lambda: nf.fit(nf.Flow, MOONS), TypeError, "got the class Flow itself"),
        (lambda: nf.fit(flow, type(MOONS)), TypeError, "got the class Moons itself"),
        (lambda: nf.fit(flow, MOONS, transform=lambda x: x[:, :1]), ValueError,
         "the output of transform has 1 columns"),
        (lambda: nf.fit_flow_matching(nf.flows.realnvp(2), MOONS), TypeError, "flow matching trains the velocity"),
        (lambda: nf.fit_reverse_kl(flow, nf.data.get("mixture1d")), ValueError, "target has dim = 1 but the flow"),
        (lambda: nf.fit_reverse_kl(flow, lambda x: x, bounds=((-3, 3),) * 2), ValueError,
         r"one log-density per point, shape \(256,\)"),
        (lambda: nf.fit_flow_matching(nf.VelocityMLP(2), data.double()), TypeError, "data is float64"),
        (lambda: nf.fit_flow_matching(nf.VelocityMLP(2), MOONS, sigma_min=1), ValueError, "sigma_min must be"),
        (lambda: nf.fit_flow_matching(nf.VelocityMLP(2), MOONS, snapshot_solver="rk4"), TypeError,
         "snapshot_solver must be a dict"),
        (lambda: flow.layers[0].inverse(data[:5].double()), TypeError, "computes in float32"),
    ]
    for call, error, message in calls:
        with pytest.raises(error, match=message):
            call()
    assert unchanged(flow, before)


def test_a_float64_flow_trains_on_a_target_whose_samples_it_draws_in_float64():
    flow = nf.flows.realnvp(2, layers=2, hidden=8).double()
    history = nf.fit(flow, MOONS, steps=5, progress=False)
    assert history.snapshots[-1].samples.dtype == torch.float64


def test_history_save_gif_checks_fps_before_drawing(tmp_path):
    history = nf.fit(nf.flows.linear(2), MOONS, steps=2, progress=False)
    for fps, error in ((0, ValueError), (float("inf"), ValueError), ("8", TypeError)):
        with pytest.raises(error, match="fps must be"):
            history.save_gif(tmp_path / "run.gif", fps=fps)
    assert not (tmp_path / "run.gif").exists()


# --- random bad arguments: only TypeError/ValueError, and nothing poisoned -------------------------------

BAD_POINTS = st.one_of(
    st.sampled_from([None, 3, "x", [[0.0, 0.0]], (0.0, 0.0)]),
    st.builds(lambda shape: torch.zeros(shape), st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)),
    st.sampled_from([torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.int64),
                     torch.zeros(4, 2, dtype=torch.bool), torch.full((4, 2), float("nan")),
                     torch.full((4, 2), float("inf")), torch.zeros(4, 2, dtype=torch.complex64)]),
)
BAD_SETTINGS = st.sampled_from([
    {"steps": 0}, {"steps": -1}, {"steps": 2.5}, {"steps": None}, {"lr": 0}, {"lr": float("nan")}, {"lr": "big"},
    {"batch_size": 0}, {"seed": None}, {"seed": 1.5}, {"frames": 0}, {"grid_size": True}, {"n_samples": -5},
    {"bounds": "auto"}, {"bounds": ((0, 0), (0, 1))}, {"snapshot_every": 0}, {"progress": None}, {"stepz": 3},
])
GOOD = real_points(20, 2).float()


@pytest.mark.parametrize("name", ["realnvp", "nsf", "glow", "planar"])
@settings(max_examples=25, deadline=None)
@given(points=BAD_POINTS, setting=BAD_SETTINGS, n=st.sampled_from([0, -1, 2.5, None, "3", True]))
def test_random_bad_arguments_raise_only_clear_errors_and_poison_nothing(name, points, setting, n):
    flow = make(name)
    flow.train()  # a fresh flow is in training mode: ActNorm would initialise from what it scores
    state = snapshot(flow)
    for call in (flow.log_prob, flow.forward, flow.inverse):
        try:
            out = call(points)
        except (TypeError, ValueError):
            continue
        result = out[0] if isinstance(out, tuple) else out
        assert result.shape[0] == points.shape[0]  # accepted only as a (batch, 2) batch: NaN in, NaN out
    for call in (flow.sample, flow.sample_and_log_prob):
        with pytest.raises((TypeError, ValueError)):
            call(n)
    with pytest.raises((TypeError, ValueError)):
        nf.fit(flow, MOONS, progress=False, **setting)
    try:  # some of the points are a valid batch (zeros of shape (k, 2)): train a copy on them
        nf.fit(copy.deepcopy(flow), points, steps=1, progress=False)
    except (TypeError, ValueError):
        pass
    assert unchanged(flow, state)  # glow's ActNorm included: no bad batch initialised it
    assert torch.equal(flow.eval().log_prob(GOOD), make(name).log_prob(GOOD))


def test_one_d_map_takes_a_one_element_tensor_as_its_shift():
    flow = nf.widgets.one_d_map("affine", 2.0, torch.tensor([0.5]))  # hypothesis found this one
    assert torch.allclose(flow(torch.zeros(1, 1))[0], torch.tensor([[0.5]]))
