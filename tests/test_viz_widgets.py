"""Pictures and widgets: figures are returned, the training player scrubs stored snapshots
(no retraining) and shows errors, explorers redraw when a slider moves, GIFs have one frame
per snapshot, and the static fallback picture is there for GitHub."""

import dataclasses
import types

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

import nflesson as nf
from nflesson import viz, widgets

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def history_2d():
    torch.manual_seed(0)
    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    return nf.fit(flow, nf.data.get("moons"), steps=40, batch_size=64, snapshot_every=10, progress=False,
                  grid_size=20, n_samples=200)


@pytest.fixture(scope="module")
def history_1d():
    flow = nf.Flow([nf.Affine(1)])
    return nf.fit(flow, nf.data.get("mixture1d"), steps=30, snapshot_every=10, lr=0.05, progress=False,
                  grid_size=50, n_samples=300)


def test_player_scrubs_stored_snapshots_without_retraining(history_2d):
    player = widgets.TrainingPlayer(history_2d, reference=1.7)
    first = player.image.value
    losses = list(history_2d.losses)
    player.slider.value = 3
    assert player.error is None and player.step == 30
    assert player.image.value != first
    assert history_2d.losses == losses
    offsets = player.frame.scatter.get_offsets()
    assert np.allclose(offsets, history_2d.snapshots[3].samples.numpy())
    assert player.slider.max == len(history_2d.snapshots) - 1 == player.play.max
    player.speed.value = 60
    assert player.play.interval == 60


def test_player_shows_its_errors_instead_of_swallowing_them(history_2d):
    player = widgets.TrainingPlayer(history_2d)
    history_2d.snapshots.append(None)  # a broken snapshot
    try:
        player.slider.max = len(history_2d.snapshots) - 1
        player.slider.value = player.slider.max
    finally:
        history_2d.snapshots.pop()
    assert isinstance(player.error, AttributeError)
    assert "AttributeError" in "".join(o.get("text", "") for o in player.output.outputs)


def test_player_1d_updates_histogram_and_density(history_1d):
    player = widgets.TrainingPlayer(history_1d)
    before = [bar.get_height() for bar in player.frame.bars]
    player.slider.value = len(history_1d.snapshots) - 1
    assert [bar.get_height() for bar in player.frame.bars] != before
    assert np.allclose(player.frame.density_line.get_ydata(), history_1d.snapshots[-1].log_density.exp().numpy())


def test_static_picture_for_pages_without_a_kernel(history_2d):
    bundle = widgets.TrainingPlayer(history_2d)._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    bundle = widgets.explore_linear_map()._repr_mimebundle_()
    assert "image/png" in bundle


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else []


def test_every_reference_line_is_labelled_with_what_it_is(history_2d):
    ax_loss = widgets.TrainingPlayer(history_2d, reference=1.7).frame.axes[2]
    assert legend_texts(ax_loss) == [viz.ENTROPY_LABEL] and "entropy" in viz.ENTROPY_LABEL
    assert [line.get_ydata()[0] for line in ax_loss.lines if line.get_linestyle() == "--"] == [1.7]
    ax_loss = widgets.TrainingPlayer(history_2d, reference=1.7, reference_label="my line").frame.axes[2]
    assert legend_texts(ax_loss) == ["my line"]
    assert legend_texts(viz.SnapshotFigure(history_2d, reference=(1.7, "a pair")).axes[2]) == ["a pair"]
    assert legend_texts(widgets.TrainingPlayer(history_2d).frame.axes[2]) == []  # no line, no legend
    reverse = dataclasses.replace(history_2d, objective="reverse KL")
    assert "log Z" in legend_texts(viz.SnapshotFigure(reverse, reference=-1.0).axes[2])[0]
    # a flow-matching loss is a regression error, not a likelihood: no default meaning for a line
    matching = dataclasses.replace(history_2d, objective="flow matching")
    with pytest.raises(ValueError, match="needs a label"):
        viz.SnapshotFigure(matching, reference=2.5)
    figure = viz.SnapshotFigure(matching, reference=4.0, reference_label="the loss of the exact field")
    assert legend_texts(figure.axes[2]) == ["the loss of the exact field"]
    with pytest.raises(ValueError, match="pair"):
        viz.SnapshotFigure(history_2d, reference=(1.0, 2.0, 3.0))
    fig = viz.plot_loss([3.0, 2.0, 1.5], reference=1.0)
    assert legend_texts(fig.axes[0]) == [viz.ENTROPY_LABEL]
    matplotlib.pyplot.close(fig)


def test_the_loss_axis_holds_the_whole_run_from_the_first_step(history_2d):
    # as in a maximum-likelihood run: the first steps well above the rest (which the panel
    # used to cut off), the rest a noisy descent
    n = len(history_2d.losses)
    losses = [4.0, 3.4] + [2.5 + 0.5 * (1 - k / n) + 0.05 * (-1) ** k for k in range(n - 2)]
    run = dataclasses.replace(history_2d, losses=losses)
    for reference in (None, 2.2):
        figure = viz.SnapshotFigure(run, reference=reference)
        bottom, top = figure.axes[2].get_ylim()
        assert bottom < min(losses) and top > max(losses) and figure.top == top
        assert reference is None or bottom < reference
        assert not figure.axes[2].texts  # nothing clipped, nothing to say
    figure = viz.SnapshotFigure(history_2d)
    bottom, top = figure.axes[2].get_ylim()
    assert bottom < min(history_2d.losses) and top > max(history_2d.losses)
    figure.show(0)
    assert figure.marker.get_marker() == "o"  # the first snapshot's loss is on the panel


def test_a_clipped_loss_axis_says_how_it_is_clipped(history_2d):
    spike = dataclasses.replace(history_2d, losses=[400.0, 250.0] + history_2d.losses[2:])
    figure = viz.SnapshotFigure(spike)
    bottom, top = figure.axes[2].get_ylim()
    assert top < 250 and top > max(spike.losses[len(spike.losses) // 10:])
    assert [t.get_text() for t in figure.axes[2].texts] == ["↑ 2 early steps above (up to 400)"]
    assert viz.loss_limits([5.0, 1.0, 1.0, 1.0])[2] is None  # not squashed enough to clip
    low, high, clipped = viz.loss_limits([50.0] + [1.0, 2.0] * 10)
    assert clipped == (1, 50.0) and low < 1.0 and 2.0 < high < 3.0


@pytest.mark.parametrize("name", ["1d", "2d"])
def test_gif_has_one_frame_per_snapshot(tmp_path, history_1d, history_2d, name):
    history = history_1d if name == "1d" else history_2d
    path = history.save_gif(tmp_path / "run.gif", fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == len(history.snapshots)
        assert gif.size == (720, 230)


def history_of(target_samples, dim):
    """A one-snapshot History-like record whose target samples are ``target_samples``."""
    grid = [torch.linspace(-3, 3, 20)] * dim
    snapshot = nf.history.Snapshot(step=0, loss=1.0, samples=torch.zeros(10, dim),
                                 log_density=torch.zeros((20,) * dim), state={})
    return types.SimpleNamespace(objective="maximum likelihood", bounds=((-3.0, 3.0),) * dim, grid=grid,
                                 target_samples=target_samples, losses=[1.0], snapshots=[snapshot])


def test_each_case_has_its_snapshot_figure_showing_the_target_samples():
    figure = viz.SnapshotFigure(history_of(torch.full((30, 1), 0.5), 1))
    assert type(figure) is viz.SnapshotFigure1D and isinstance(figure, viz.SnapshotFigure)
    heights = [bar.get_height() for bar in figure.axes[0].patches]  # the target's histogram: one bin 0.1 wide
    assert max(heights) == pytest.approx(10.0) and sum(h > 0 for h in heights) == 1
    target = torch.randn(30, 2)
    figure = viz.SnapshotFigure(history_of(target, 2))
    assert type(figure) is viz.SnapshotFigure2D
    shown = [c for c in figure.axes[0].collections if c.get_label() == "target"]
    assert np.allclose(shown[0].get_offsets(), target.numpy())
    assert type(viz.SnapshotFigure(history_of(None, 2))) is viz.SnapshotFigure2D


def test_explorers_redraw_when_a_control_moves():
    explorer = widgets.explore_change_of_variables("exp")
    draws = explorer.draws
    title = explorer.fig.axes[2].get_title()
    explorer.controls["kind"].value = "sigmoid"
    assert explorer.draws == draws + 1 and explorer.error is None
    assert explorer.fig.axes[2].get_xlim()[1] <= 1.01  # a sigmoid lives in (0, 1)
    explorer.controls["without_jacobian"].value = True
    assert any("no Jacobian" in t.get_text() for t in explorer.fig.axes[2].get_legend().get_texts())
    assert title == explorer.fig.axes[2].get_title()
    linear = widgets.explore_linear_map()
    linear.controls["a11"].value = 0.5
    assert "|det A| = 0.50" in linear.fig.axes[0].get_title()


def test_explorer_shows_errors():
    def draw(fig, x):
        if x > 1:
            raise ValueError("too far")
        fig.subplots().plot([0, x])

    explorer = widgets.Explorer(draw, x=widgets._slider(0.5, 0, 2, 0.1, "x"))
    explorer.controls["x"].value = 1.5
    assert isinstance(explorer.error, ValueError)
    assert "too far" in "".join(o.get("text", "") for o in explorer.output.outputs)
    explorer.controls["x"].value = 0.2
    assert explorer.error is None


def test_one_d_map_is_scale_then_outer_map():
    flow = widgets.one_d_map("exp", 2.0, 0.5)
    z = torch.tensor([[0.3]])
    assert torch.allclose(flow(z)[0], torch.exp(2.0 * z + 0.5))


def test_plot_functions_return_figures():
    flow = nf.flows.realnvp(2, layers=2, hidden=8)
    bounds = ((-3, 3), (-3, 3))
    for fig in (
        viz.plot_density(flow.log_prob, bounds, size=20),
        viz.plot_samples(torch.randn(50, 2), bounds=bounds, title="s"),
        viz.plot_warped_grid(flow, bounds, lines=4, resolution=10, title="grid"),
        viz.plot_layers(flow, torch.randn(30, 2), bounds=bounds),
        viz.plot_layers(flow, torch.randn(30, 2), inverse=True),
        viz.plot_loss([3.0, 2.0, 1.5], reference=1.0),
        viz.plot_1d_map(nf.Flow([nf.Exp()], dim=1), n=100, without_jacobian=True),
    ):
        assert isinstance(fig, matplotlib.figure.Figure)
        matplotlib.pyplot.close(fig)


def test_density_on_grid_rows_are_y():
    values = viz.density_on_grid(lambda p: -(p[:, 1] - 1).square() * 10, ((-2, 2), (-2, 2)), size=41)
    assert values.shape == (41, 41)
    assert np.argmax(values[:, 0]) == 30  # y = 1 is row 30 of 41 over [-2, 2]


def test_position_colors_follow_angle():
    colors = viz.position_colors(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]]))
    assert np.allclose(colors[0], colors[2]) and not np.allclose(colors[0], colors[1])


def test_planar_explorer_sets_the_effective_u_and_keeps_it_invertible():
    explorer = widgets.explore_planar()
    assert explorer.error is None and explorer.fig._suptitle.get_text() == "w.u = 1.00"
    explorer.controls["u1"].value = -3.0  # w.u = -3: not invertible as asked
    assert "w.u = -0.99" in explorer.fig._suptitle.get_text() and "moved" in explorer.fig._suptitle.get_text()
    explorer.controls["w1"].value = 0.0
    explorer.controls["w2"].value = 0.0
    assert explorer.error is None


def test_radial_explorer_holds_beta_above_minus_alpha():
    explorer = widgets.explore_radial()
    assert explorer.error is None
    explorer.controls["beta"].value = -2.0
    assert "beta = -0.50" in explorer.fig._suptitle.get_text() and "held" in explorer.fig._suptitle.get_text()


def test_figure_image_is_the_figure_drawn_in_full(tmp_path):
    fig = viz.agg_figure((2, 1.5), dpi=50)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_axis_off()
    ax.imshow([[0.0, 1.0]], cmap="gray", aspect="auto")  # left half black, right half white
    image = viz.figure_image(fig)
    assert image.size == fig.canvas.get_width_height() == (100, 75)
    assert image.getpixel((10, 37))[:3] == (0, 0, 0) and image.getpixel((90, 37))[:3] == (255, 255, 255)
    ax.images[0].set_data([[1.0, 0.0]])  # swapped: a second, different frame
    path = viz.write_gif([image, viz.figure_image(fig)], tmp_path / "two.gif")
    assert Image.open(path).n_frames == 2


def test_layer_panels_name_each_layer_by_its_place_in_the_flow_both_ways():
    flow = nf.flows.realnvp(2, layers=3, hidden=4)
    points = torch.randn(20, 2)
    forward = [ax.get_title() for ax in viz.plot_layers(flow, points).axes]
    backward = [ax.get_title() for ax in viz.plot_layers(flow, points, inverse=True).axes]
    assert forward == ["base", "after layer 1", "after layer 2", "after layer 3"]
    assert backward == ["data", "after inverse of layer 3", "after inverse of layer 2", "after inverse of layer 1"]


def test_plot_images_draws_a_grid_of_digits_in_one_image():
    images = torch.arange(2 * 3 * 64, dtype=torch.float32).reshape(2, 3, 64) % 17
    fig = viz.plot_images(images, row_labels=["a", "b"], title="digits")
    ax = fig.axes[0]
    canvas = ax.images[0].get_array()
    assert len(ax.images) == 1 and canvas.shape == (2 * 9 - 1, 3 * 9 - 1)
    assert np.array_equal(canvas[9:17, 18:26], images[1, 2].reshape(8, 8).numpy())  # row 1, column 2
    assert canvas.mask[8].all() and canvas.mask[:, 8].all()  # white gaps between the images
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"] and ax.get_title() == "digits"
    with pytest.raises(TypeError, match=r"\(rows, columns, pixels\)"):
        viz.plot_images(images[0])
    with pytest.raises(ValueError, match="needs 49"):
        viz.plot_images(images, shape=(7, 7))
    with pytest.raises(ValueError, match="each of the 2 rows"):
        viz.plot_images(images, row_labels=range(10))
    matplotlib.pyplot.close("all")


# Machado, Oliveira & Fernandes (2009), full dichromacy, on linear sRGB.
DICHROMACY = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


def _lab(colours, vision=None):
    """CIELAB (D65) of matplotlib colours, as seen with ``vision`` (a key of DICHROMACY) or normally."""
    srgb = np.array([matplotlib.colors.to_rgb(c) for c in colours])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    if vision:
        linear = np.clip(linear @ np.array(DICHROMACY[vision]).T, 0, 1)
    to_xyz = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def _closest_pair(colours, vision=None):
    lab = _lab(colours, vision)
    distances = np.linalg.norm(lab[:, None] - lab[None], axis=-1) + np.diag([np.inf] * len(colours))
    return distances.min()


def test_palette_stays_distinguishable_for_colour_blind_readers():
    """Every pair of the categorical colours stays at least 15 CIELAB units (ΔE76) apart normally and
    under simulated protanopia, deuteranopia and tritanopia; matplotlib's tab10, the usual default,
    does not (its orange and green fall to about 5 under protanopia)."""
    roles = [viz.TARGET_COLOR, viz.MODEL_COLOR, viz.BASE_COLOR]
    assert len(set(roles)) == 3 and set(roles) <= set(viz.CATEGORICAL)
    for vision in [None, *DICHROMACY]:
        assert _closest_pair(viz.CATEGORICAL, vision) > 15, vision
        assert _closest_pair(roles, vision) > 15, vision
    tab10 = [matplotlib.colormaps["tab10"](k) for k in range(10)]
    assert _closest_pair(tab10[:3], "protanopia") < 8  # the check can fail
    # ten classes: the colours repeat after eight, the (colour, marker) pairs never do
    styles = [viz.class_style(k) for k in range(10)]
    assert len({(s["color"], s["marker"]) for s in styles}) == len({s["marker"] for s in styles}) == 10
    assert viz.DENSITY_CMAP in ("viridis", "cividis")
    with pytest.raises(ValueError, match="k must be an integer >= 0"):
        viz.class_style(-1)
