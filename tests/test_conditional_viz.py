"""Pictures of conditional flows q(x | c): training snapshots for a few fixed contexts (their
shapes, the contexts chosen, the figures, the GIF and the player), the explorer of q(x | c)
beside p(x | c) over c (its pictures change with c, its gap is that of an independent
computation, it looks outside the training range, its arguments are checked), and the learned
transformation for one context. Tiny flows and few steps: each test runs in well under 2 s."""

import io
import math

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

import nflesson as nf
from nflesson import viz, widgets
from nflesson.train import distinct_contexts, few_contexts
from cases import randomize

matplotlib.use("Agg")

QUICK = dict(steps=6, batch_size=64, frames=3, progress=False, grid_size=16, n_samples=50)


def conditional_flow(k=1, dim=2, seed=0, scale=0.3):
    """A small conditional RealNVP with random (non-identity) parameters, as after training."""
    return randomize(nf.flows.realnvp(dim, layers=2, hidden=8, context=k), scale=scale, seed=seed)


@pytest.fixture(scope="module")
def ring_history():
    torch.manual_seed(0)
    flow = nf.flows.realnvp(2, layers=2, hidden=8, context=1)
    return flow, nf.fit(flow, nf.data.get("ring_by_radius"), **QUICK)


# --- snapshots ----------------------------------------------------------------------------------

def test_snapshots_hold_samples_and_density_for_each_of_a_targets_contexts(ring_history):
    flow, history = ring_history
    target = nf.data.get("ring_by_radius")
    assert len(target.snapshot_contexts) == 5  # more than 4: the first, middle and last
    assert torch.equal(history.context, target.snapshot_contexts[[0, 2, 4]])
    assert history.context.tolist() == [[1.0], [2.0], [3.0]]
    assert isinstance(history.target_samples, list) and [t.shape for t in history.target_samples] == [(50, 2)] * 3
    radii = [t.norm(dim=1).mean().item() for t in history.target_samples]  # the ring's radius is c
    assert radii == pytest.approx([1.0, 2.0, 3.0], abs=0.25)
    assert len(history.snapshots) == 4
    for snapshot in history.snapshots:
        assert snapshot.samples.shape == (3, 50, 2) and snapshot.log_density.shape == (3, 16, 16)
    last = history.snapshots[-1]  # the flow as trained: its density given each context, on the grid
    grid = torch.stack([t.flatten() for t in torch.meshgrid(*history.grid, indexing="xy")], -1)
    with torch.no_grad():
        for j, c in enumerate(history.context):
            torch.testing.assert_close(last.log_density[j], flow.log_prob(grid, c).reshape(16, 16))
        bases = [flow.inverse(last.samples[j], c)[0] for j, c in enumerate(history.context)]
    for base in bases[1:]:  # the same base noise carried to each q(x | c)
        torch.testing.assert_close(base, bases[0], atol=1e-4, rtol=0)
    assert not torch.allclose(last.samples[0], last.samples[2])


def test_at_most_four_contexts_all_of_them_and_contexts_of_points_sorted():
    four = nf.data.get("gaussians_by_class").snapshot_contexts
    assert torch.equal(few_contexts(four), four)
    five = torch.arange(5.0)[:, None]
    assert few_contexts(five).flatten().tolist() == [0.0, 2.0, 4.0]
    scalars = torch.tensor([[3.0], [1.0], [2.0], [1.0], [5.0], [4.0]])
    assert distinct_contexts(scalars).flatten().tolist() == [1.0, 3.0, 5.0]  # first, middle, last distinct
    assert distinct_contexts(torch.tensor([[2.0], [1.0], [2.0]])).flatten().tolist() == [1.0, 2.0]
    labels = torch.tensor([4, 0, 2, 4, 1, 3])
    one_hot = torch.nn.functional.one_hot(labels, 5).float()
    assert distinct_contexts(one_hot).argmax(1).tolist() == [0, 2, 4]  # classes in class order


def test_points_with_contexts_draw_their_own_rows_or_their_nearest():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=generator)
    x = torch.randn(400, 2, generator=generator) + 3 * labels[:, None].float()
    c = torch.nn.functional.one_hot(labels, 4).float()
    torch.manual_seed(0)
    history = nf.fit(nf.flows.realnvp(2, layers=2, hidden=8, context=4), x, context=c, **QUICK)
    assert history.context.argmax(1).tolist() == [0, 1, 3]
    for j, label in enumerate([0, 1, 3]):  # exactly that class's points, up to n_samples
        assert torch.equal(history.target_samples[j], x[labels == label][:50])
    assert history.snapshots[0].samples.shape == (3, 50, 2)
    scalar = torch.rand(300, 1, generator=generator)  # continuous: every row its own context
    points = torch.cat([scalar, -scalar], 1) + 0.1 * torch.randn(300, 2, generator=generator)
    history = nf.fit(nf.flows.realnvp(2, layers=2, hidden=8, context=1), points, context=scalar, **QUICK)
    assert torch.equal(history.context, scalar.sort(0).values[[0, 149, 299]])
    for j, near in enumerate(history.target_samples):
        assert near.shape == (300 // 15, 2)  # len(data) // (5 m) nearest points
        rows = torch.cdist(scalar, history.context[j:j + 1])[:, 0].argsort()[:20]
        assert torch.equal(near, points[rows])
    one = nf.fit(nf.flows.realnvp(2, layers=2, hidden=8, context=1), points, context=torch.ones(300, 1), **QUICK)
    assert one.context.shape == (1, 1) and torch.equal(one.target_samples[0], points[:50])  # one context: as before


def test_an_unconditional_run_keeps_its_snapshots_as_they_were():
    torch.manual_seed(0)
    history = nf.fit(nf.flows.realnvp(2, layers=2, hidden=8), nf.data.get("moons"), **QUICK)
    assert history.context is None and isinstance(history.target_samples, torch.Tensor)
    assert history.target_samples.shape == (50, 2)
    assert history.snapshots[0].samples.shape == (50, 2) and history.snapshots[0].log_density.shape == (16, 16)
    figure = viz.SnapshotFigure(history)
    assert len(figure.panels) == 1 and figure.axes.shape == (3,) and figure.ax_loss is figure.axes[2]
    assert figure.fig.get_size_inches().tolist() == [10, 3.2]
    assert figure.axes[0].get_title() == "samples" and figure.axes[1].get_title() == "model density"


def test_flow_matching_snapshots_each_context_along_the_ode():
    target = nf.data.get("rotated_moons")
    velocity = nf.VelocityMLP(2, hidden=8, context=1)
    history = nf.fit_flow_matching(velocity, target, snapshot_solver={"method": "rk4", "steps": 2}, **QUICK)
    assert torch.equal(history.context, target.snapshot_contexts[[0, 2, 4]])
    assert history.snapshots[-1].samples.shape == (3, 50, 2) and history.snapshots[-1].log_density.shape == (3, 16, 16)


# --- the training figure, GIF and player --------------------------------------------------------

def test_the_figure_of_a_conditional_run_has_a_column_per_context(ring_history):
    _, history = ring_history
    figure = viz.SnapshotFigure(history, reference=1.6)
    assert type(figure) is viz.SnapshotFigure2D and figure.axes.shape == (2, 3) and len(figure.panels) == 3
    assert [ax.get_title() for ax in figure.axes[0]] == [f"samples given c = {c}" for c in (1, 2, 3)]
    assert [ax.get_title() for ax in figure.axes[1]] == [f"model q(x | c = {c})" for c in (1, 2, 3)]
    assert figure.ax_loss.get_legend().get_texts()[0].get_text() == viz.CONDITIONAL_ENTROPY_LABEL
    first = figure.render(0)
    last = figure.render(len(history.snapshots) - 1)
    assert first.size == last.size == (820, 403) and first.tobytes() != last.tobytes()
    snapshot = history.snapshots[-1]
    for j, panel in enumerate(figure.panels):
        assert np.allclose(panel["scatter"].get_offsets(), snapshot.samples[j].numpy())
        assert np.allclose(panel["image"].get_array(), snapshot.log_density[j].exp().numpy())
        target = [c for c in figure.axes[0, j].collections if c.get_label() == "target"][0]
        assert np.allclose(target.get_offsets(), history.target_samples[j].numpy())
    assert figure.scatter is figure.panels[0]["scatter"]


def test_gif_and_player_of_a_conditional_run(tmp_path, ring_history):
    _, history = ring_history
    path = history.save_gif(tmp_path / "run.gif", fps=5, reference=1.6)
    with Image.open(path) as gif:
        assert gif.n_frames == len(history.snapshots) and gif.size == (820, 403)
    player = widgets.TrainingPlayer(history, reference=1.6)
    first = player.image.value
    player.slider.value = len(history.snapshots) - 1
    assert player.error is None and player.image.value != first
    assert "image/png" in player._repr_mimebundle_()


def test_a_one_d_conditional_run_has_a_density_and_a_histogram_per_context():
    c = torch.linspace(-2, 2, 200)[:, None]
    x = c + 0.3 * torch.randn(200, 1, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    history = nf.fit(nf.flows.maf(1, layers=2, hidden=8, context=1), x, context=c, **QUICK)
    assert history.snapshots[0].samples.shape == (3, 50, 1) and history.snapshots[0].log_density.shape == (3, 16)
    figure = viz.SnapshotFigure(history)
    assert type(figure) is viz.SnapshotFigure1D and figure.axes.shape == (2, 3)
    assert figure.axes[0, 0].get_title() == "q(x | c = -2)" and figure.axes[1, 2].get_title() == "model samples, c = 2"
    figure.render(len(history.snapshots) - 1)
    for j, panel in enumerate(figure.panels):
        assert np.allclose(panel["density_line"].get_ydata(), history.snapshots[-1].log_density[j].exp().numpy())


def test_contexts_are_named_as_a_learner_reads_them():
    assert viz.context_label(torch.tensor([1.5])) == "c = 1.5"
    assert viz.context_label(2) == "c = 2"
    assert viz.context_label(torch.tensor([0.0, 0.0, 1.0, 0.0])) == "class 2"
    assert viz.context_label(torch.tensor([0.25, 2.0])) == "c = (0.25, 2)"
    assert viz.context_label(torch.arange(6.0)) == "c = (0, 1, 2, 3, ...)"


# --- the explorer of q(x | c) ---------------------------------------------------------------------

EXPLORE = dict(grid_size=30, n_samples=400, curve_points=5)


def independent_gap(flow, target, c, n, seed=0):
    """KL(p(.|c) || q(.|c)) from n samples of p(x | c) drawn with the seed, computed here."""
    x = target.sample_given(c.expand(n, -1), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        terms = target.log_prob(x.double(), c.double()).double() - flow.log_prob(x, c.float()).double()
    return terms.mean().item(), terms.std().item() / math.sqrt(n)


def picture(explorer):
    buffer = io.BytesIO()
    explorer.fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def test_the_explorer_redraws_q_beside_p_and_shows_the_gap_of_each_context():
    target, flow = nf.data.get("ring_by_radius"), conditional_flow()
    explorer = widgets.explore_conditional(flow, target, **EXPLORE)
    assert explorer.error is None and (explorer.control.min, explorer.control.max) == (1.0, 3.0)
    assert explorer.control.value == 2.0  # the target's middle typical context
    pictures, gaps = [], []
    for value in (1.2, 2.0, 2.9):
        explorer.control.value = value
        assert explorer.error is None and explorer.context.tolist() == pytest.approx([value])
        nats, error = independent_gap(flow, target, torch.tensor([value]), 400)
        assert explorer.gap.nats == pytest.approx(nats, rel=1e-6, abs=1e-9)
        assert explorer.gap.standard_error == pytest.approx(error, rel=1e-6)
        assert str(explorer.gap) in explorer.title.get_text() and f"c = {value:g}" in explorer.title.get_text()
        with torch.no_grad():
            expected = target.log_prob(explorer.grid.float(), torch.tensor([value])).exp().reshape(30, 30)
        assert np.allclose(explorer.images[0].get_array(), expected.numpy(), atol=1e-5)
        assert explorer.axes[1].get_title() == f"model q(x | c = {value:g})"
        pictures.append(picture(explorer))
        gaps.append(explorer.gap.nats)
    assert len(set(pictures)) == 3 and len(set(gaps)) == 3
    explorer.control.value = 1.2
    assert explorer.gap.nats == gaps[0]  # a fixed seed: the same c gives the same number
    values, curve = explorer.curve
    assert values == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0])
    assert curve[2].nats == pytest.approx(gaps[1])  # the curve is the gap shown at those c
    assert "image/png" in explorer._repr_mimebundle_()


def test_the_explorer_looks_outside_the_training_range_when_asked():
    target, flow = nf.data.get("ring_by_radius"), conditional_flow()
    explorer = widgets.explore_conditional(flow, target, context_range=(0.5, 4.0), **EXPLORE)
    assert (explorer.control.min, explorer.control.max) == (0.5, 4.0)
    explorer.control.value = 3.8
    assert explorer.error is None and "outside the training range" in explorer.title.get_text()
    assert explorer.gap.nats == pytest.approx(independent_gap(flow, target, torch.tensor([3.8]), 400)[0], rel=1e-6)
    explorer.control.value = 2.5
    assert "outside" not in explorer.title.get_text()
    assert explorer.curve[0][0] == 0.5 and explorer.curve[0][-1] == 4.0


def test_the_explorer_of_a_class_context_has_a_slider_over_the_classes():
    target = nf.data.get("gaussians_by_class")
    flow = conditional_flow(k=8)
    explorer = widgets.explore_conditional(flow, target, **EXPLORE)
    assert isinstance(explorer.control, widgets.widgets.IntSlider) and explorer.control.max == 7
    explorer.control.value = 5
    assert explorer.error is None and explorer.context.tolist() == [0, 0, 0, 0, 0, 1, 0, 0]
    assert explorer.title.get_text().startswith("class 5:")
    nats, _ = independent_gap(flow, target, explorer.context, 400)
    assert explorer.gap.nats == pytest.approx(nats, rel=1e-6)
    assert explorer.curve[0] == list(range(8)) and explorer.curve[1][5].nats == pytest.approx(nats, rel=1e-6)


def test_the_explorer_shows_an_error_in_the_widget():
    target, flow = nf.data.get("ring_by_radius"), conditional_flow()
    explorer = widgets.explore_conditional(flow, target, **EXPLORE)
    explorer.target = None  # broken after construction
    explorer.control.value = 1.5
    assert isinstance(explorer.error, AttributeError)
    assert "AttributeError" in "".join(o.get("text", "") for o in explorer.output.outputs)


@pytest.mark.parametrize("call, error, message", [
    (lambda f, t: widgets.explore_conditional(t, t), TypeError, "flow must be a trained conditional nflesson.Flow"),
    (lambda f, t: widgets.explore_conditional(nf.flows.realnvp, t), TypeError, "got the function realnvp itself"),
    (lambda f, t: widgets.explore_conditional(nf.flows.realnvp(2, layers=1, hidden=4), t), ValueError,
     "flow is unconditional"),
    (lambda f, t: widgets.explore_conditional(conditional_flow(dim=3), t), ValueError, "must have dim 2, got dim = 3"),
    (lambda f, t: widgets.explore_conditional(f, nf.data.get("moons")), TypeError, "must be a conditional target"),
    (lambda f, t: widgets.explore_conditional(f, type(t)), TypeError, "the class RingByRadius itself"),
    (lambda f, t: widgets.explore_conditional(conditional_flow(k=2), t), ValueError,
     "contexts have width 1 but the flow has context = 2"),
    (lambda f, t: widgets.explore_conditional(f, t, context_range=(3, 1)), ValueError, "low < high"),
    (lambda f, t: widgets.explore_conditional(f, t, context_range="wide"), TypeError, "context_range must be"),
    (lambda f, t: widgets.explore_conditional(f, t, context_range=(-1, 3)), ValueError,
     "context_range reaches c = -1, where the target has no density"),
    (lambda f, t: widgets.explore_conditional(conditional_flow(k=8), nf.data.get("gaussians_by_class"),
                                              context_range=(0, 1)), ValueError, "one-hot class label"),
    (lambda f, t: widgets.explore_conditional(f, t, n_samples=1), ValueError, "n_samples must be an integer >= 2"),
    (lambda f, t: widgets.explore_conditional(f, t, n_samples=2.5), TypeError, "n_samples must be an integer"),
    (lambda f, t: widgets.explore_conditional(f, t, curve_points=1), ValueError, "curve_points must be 0"),
    (lambda f, t: widgets.explore_conditional(f, t, grid_size=1), ValueError, "grid_size"),
    (lambda f, t: widgets.explore_conditional(f, t, seed=-1), ValueError, "seed"),
    (lambda f, t: widgets.explore_conditional(f, t, bounds=((0, 1),)), ValueError, "bounds"),
    (lambda f, t: widgets.explore_conditional(f, t, figsize=(0, 3)), ValueError, "figsize width"),
])
def test_the_explorer_checks_its_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call(conditional_flow(), nf.data.get("ring_by_radius"))


def test_a_curve_free_explorer_and_one_without_the_targets_range():
    target, flow = nf.data.get("ring_by_radius"), conditional_flow()
    explorer = widgets.explore_conditional(flow, target, grid_size=20, n_samples=100, curve_points=0)
    assert explorer.curve is None and len(explorer.axes) == 2 and explorer.error is None


# --- the learned transformation for one context ----------------------------------------------------

def test_the_transformation_of_a_context_carries_the_base_into_q_given_c():
    flow = conditional_flow()
    shown = []
    for c in (1.0, torch.tensor([2.5])):
        figure = viz.TransformationFigure(flow, n_points=60, lines=5, density=True, bounds=((-3, 3), (-3, 3)),
                                          context=c)
        context = torch.tensor([float(c)])
        figure.render(0.0)
        base = torch.tensor(np.asarray(figure.points.get_offsets()), dtype=torch.float32)
        figure.render(figure.layers)
        last = np.asarray(figure.points.get_offsets())
        with torch.no_grad():
            assert np.allclose(last, flow(base, context)[0].numpy(), atol=1e-5)
            _, points = viz.grid_points(((-3, 3), (-3, 3)), 90)
            final = flow.log_prob(points, context).exp().reshape(90, 90).numpy()
        assert np.allclose(figure.density_image.get_array(), final / final.max(), atol=1e-5)
        assert f"q(x | c = {float(c):g})" in figure.fig.axes[0].get_title()
        shown.append(last)
    assert not np.allclose(*shown)  # the context changes the map


def test_the_transformation_of_a_continuous_flow_for_a_context(tmp_path):
    velocity = randomize(nf.VelocityMLP(2, hidden=8, context=1), scale=0.3)
    flow = nf.Flow([nf.ContinuousFlow(2, velocity, context=1, method="rk4", steps=4)])
    data = torch.randn(30, 2, generator=torch.Generator().manual_seed(0))
    solver = {"method": "rk4", "steps": 4}
    figure = viz.TransformationFigure(flow, n_points=40, lines=5, density=True, data=data, time_steps=2,
                                      bounds=((-3, 3), (-3, 3)), solver=solver, context=0.7)
    figure.render(0.0)
    base = torch.tensor(np.asarray(figure.points.get_offsets()), dtype=torch.float32)
    figure.render(1.0)
    context = torch.tensor([0.7])
    with torch.no_grad():
        assert np.allclose(np.asarray(figure.points.get_offsets()), flow(base, context)[0].numpy(), atol=1e-4)
        assert np.allclose(np.asarray(figure.back_points.get_offsets()), flow.inverse(data, context)[0].numpy(),
                           atol=1e-4)
        _, points = viz.grid_points(((-3, 3), (-3, 3)), 90)
        final = flow.log_prob(points, context).exp().reshape(90, 90).numpy()
    assert np.allclose(figure.density_image.get_array(), final / final.max(), atol=1e-4)
    path = viz.save_transformation_gif(flow, tmp_path / "cnf.gif", frames=3, context=0.7, n_points=20, lines=3,
                                       time_steps=2, solver=solver)
    with Image.open(path) as gif:
        assert gif.n_frames == 3


def test_the_transformation_gif_and_player_take_a_context(tmp_path):
    flow = conditional_flow(k=2)
    path = viz.save_transformation_gif(flow, tmp_path / "t.gif", frames=4, n_points=30, lines=3,
                                       context=torch.tensor([0.5, -1.0]))
    with Image.open(path) as gif:
        assert gif.n_frames == 4
    player = widgets.TransformationPlayer(flow, frames=4, n_points=30, lines=3, context=[0.5, -1.0])
    assert player.error is None
    first = player.image.value
    player.slider.value = 0.0
    assert player.image.value != first
    assert "c = (0.5, -1)" in player.frame.fig.axes[0].get_title()


@pytest.mark.parametrize("make, context, error, message", [
    (conditional_flow, None, ValueError, "conditional on a context of width 1: pass context=c"),
    (lambda: conditional_flow(k=2), 1.0, ValueError, "one context of width 2 \\(2 numbers\\), got 1"),
    (conditional_flow, torch.ones(3, 1), ValueError, "must be one context, a tensor of shape \\(1,\\)"),
    (conditional_flow, "1.0", TypeError, "context must be one context of width 1"),
    (conditional_flow, torch.tensor([True]), TypeError, "tensor of real numbers"),
    (conditional_flow, math.nan, ValueError, "finite numbers"),
    (lambda: nf.flows.realnvp(2, layers=1, hidden=4), 1.0, ValueError, "this flow is unconditional"),
])
def test_the_transformation_refuses_a_missing_or_wrong_context(make, context, error, message):
    with pytest.raises(error, match=message):
        viz.TransformationFigure(make(), n_points=10, context=context)
    with pytest.raises(error, match=message):
        widgets.TransformationPlayer(make(), n_points=10, context=context)


class ShiftedByTwoNumbers:
    """x | c ~ N(c, 0.5^2 I) for a context of two numbers, c ~ U[-1, 1]^2 (a duck-typed target)."""

    dim, context_size, bounds = 2, 2, ((-3.0, 3.0), (-3.0, 3.0))
    context_bounds = ((-1.0, 1.0), (-1.0, 1.0))

    def sample_given(self, context, generator=None):
        return context.float() + 0.5 * torch.randn(len(context), 2, generator=generator)

    def log_prob(self, x, context):
        return torch.distributions.Normal(context.to(x.dtype), 0.5).log_prob(x).sum(-1)


def test_a_context_of_several_numbers_gets_a_slider_for_each():
    target, flow = ShiftedByTwoNumbers(), conditional_flow(k=2)
    explorer = widgets.explore_conditional(flow, target, **EXPLORE)
    assert len(explorer.controls) == 2 and explorer.curve is None and len(explorer.axes) == 2
    assert [c.description for c in explorer.controls] == ["c[0]", "c[1]"]
    explorer.controls[1].value = 0.5
    assert explorer.error is None and explorer.context.tolist() == [0.0, 0.5]
    nats, _ = independent_gap(flow, target, torch.tensor([0.0, 0.5]), 400)
    assert explorer.gap.nats == pytest.approx(nats, rel=1e-6)
    widened = widgets.explore_conditional(flow, target, context_range=((-2, 2), (-3, 3)), **EXPLORE)
    assert [(c.min, c.max) for c in widened.controls] == [(-2.0, 2.0), (-3.0, 3.0)]
    del ShiftedByTwoNumbers.context_bounds
    try:
        with pytest.raises(ValueError, match="the target has no context_bounds: pass context_range"):
            widgets.explore_conditional(flow, target, **EXPLORE)
    finally:
        ShiftedByTwoNumbers.context_bounds = ((-1.0, 1.0), (-1.0, 1.0))
