"""The learned transformation (viz.TransformationFigure, save_transformation_gif and the
TransformationPlayer): what the figure's artists show is read back and compared with the flow
itself: the first frame is the base noise, the last is the flow's samples of that noise, the
in-between frames lie between two layers, and the 1D and 2D densities are the flow's own."""

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

import nflesson as nf
from nflesson import viz, widgets
from cases import randomize

matplotlib.use("Agg")

FACTORIES = ["linear", "planar", "radial", "realnvp", "maf", "iaf", "nsf"]


def trained_looking(name, dim=2, layers=3):
    """A flow from the factory with random (non-identity) parameters, as after training."""
    options = {"hidden": 8} if name in ("realnvp", "maf", "iaf", "nsf") else {}
    return randomize(getattr(nf.flows, name)(dim, layers=layers, **options), scale=0.4)


@pytest.mark.parametrize("name", FACTORIES)
def test_first_frame_is_the_base_and_last_the_flows_samples(name):
    flow = trained_looking(name)
    figure = viz.TransformationFigure(flow, n_points=100, lines=5)
    figure.render(0.0)
    base = torch.tensor(np.asarray(figure.points.get_offsets()), dtype=torch.float32)
    figure.render(figure.layers)
    last = np.asarray(figure.points.get_offsets())
    assert figure.layers == 3
    with torch.no_grad():
        assert np.allclose(last, flow(base)[0].numpy(), atol=1e-5)
    assert base.std() > 0.5  # base noise, not the data
    assert "the data" in figure.title.get_text()


def test_in_between_frames_lie_between_two_layers():
    flow = trained_looking("realnvp")
    figure = viz.TransformationFigure(flow, n_points=50)
    figure.render(0.0)
    base = torch.tensor(np.asarray(figure.points.get_offsets()), dtype=torch.float32)
    after = flow.trace(base)
    figure.render(1.25)
    shown = np.asarray(figure.points.get_offsets())
    assert np.allclose(shown, (0.75 * after[1] + 0.25 * after[2]).numpy(), atol=1e-5)
    assert "layer 2 of 3" in figure.title.get_text()
    segments = figure.grid_lines.get_segments()
    assert len(segments) == 2 * 13 and all(len(s) == 60 for s in segments)


def test_the_way_back_starts_at_the_data_and_ends_in_the_base():
    flow = trained_looking("maf")
    data = nf.data.get("moons").sample(200, generator=torch.Generator().manual_seed(0))
    figure = viz.TransformationFigure(flow, n_points=50, data=data, density=True)
    assert len(figure.fig.axes) == 3
    figure.render(0.0)
    assert np.allclose(np.asarray(figure.back_points.get_offsets()), data.numpy())
    figure.render(figure.layers)
    with torch.no_grad():
        assert np.allclose(np.asarray(figure.back_points.get_offsets()), flow.inverse(data)[0].numpy(), atol=1e-5)


def test_density_panel_shows_the_density_after_each_layer():
    flow = trained_looking("planar")
    figure = viz.TransformationFigure(flow, n_points=50, density=True, bounds=((-3, 3), (-3, 3)))
    _, points = viz.grid_points(((-3, 3), (-3, 3)), 90)
    for k in (0, 2, 3):
        figure.render(k)
        partial = nf.Flow(list(flow.layers[:k]), dim=2)
        with torch.no_grad():
            expected = partial.log_prob(points).exp().reshape(90, 90).numpy()
        assert np.allclose(figure.density_image.get_array(), expected / expected.max(), atol=1e-5)


def test_one_d_flow_moves_points_on_a_line_and_shows_its_exact_density():
    flow = randomize(nf.flows.planar(1, layers=4), scale=0.6).double()
    figure = viz.TransformationFigure(flow, n_points=300)
    figure.render(0.0)
    base = torch.tensor(np.asarray(figure.points.get_offsets())[:, :1])
    figure.render(4.0)
    assert np.allclose(np.asarray(figure.points.get_offsets())[:, 0], flow(base)[0][:, 0].detach().numpy())
    x, shown = (np.asarray(v) for v in figure.density_line.get_data())
    with torch.no_grad():
        exact = flow.log_prob(torch.tensor(x).unsqueeze(-1)).exp().numpy()
    assert np.allclose(shown, exact, rtol=1e-8)  # p_base(z) / |dx/dz| along the map is the flow's density
    figure.render(0.0)
    x, shown = (np.asarray(v) for v in figure.density_line.get_data())
    assert np.allclose(shown, np.exp(-x**2 / 2) / np.sqrt(2 * np.pi))


def test_gif_has_the_frames_asked_for_from_base_to_data(tmp_path):
    flow = trained_looking("realnvp")
    path = viz.save_transformation_gif(flow, tmp_path / "flow.gif", frames=12, n_points=200, density=True)
    with Image.open(path) as gif:
        assert gif.n_frames == 12
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert durations[-1] > durations[1]  # it rests on the data
    assert path.stat().st_size < 1_000_000
    one_d = viz.save_transformation_gif(randomize(nf.flows.radial(1, layers=2)), tmp_path / "line.gif", frames=5)
    with Image.open(one_d) as gif:
        assert gif.n_frames == 5


def test_each_dimension_has_its_figure_class():
    two_d = viz.TransformationFigure(trained_looking("planar"), n_points=20, lines=3)
    assert type(two_d) is viz.TransformationFigure2D and isinstance(two_d, viz.TransformationFigure)
    one_d = viz.TransformationFigure(flow=randomize(nf.flows.radial(1, layers=2)), n_points=20)
    assert type(one_d) is viz.TransformationFigure1D and not one_d.continuous


def test_layer_times_run_from_base_to_data_and_rest_at_every_layer():
    times = viz.layer_times(3, 31)
    assert times[0] == 0 and times[-1] == 3 and np.all(np.diff(times) >= 0)
    assert np.allclose(times[[10, 20]], [1, 2])
    steps = np.diff(times)
    assert steps[9] < steps[4]  # slower near the output of layer 1 than mid-way


@pytest.mark.parametrize("call, error, message", [
    (lambda: viz.TransformationFigure(nf.flows.realnvp(3, layers=2)), ValueError, "dim 1 or 2, got dim = 3"),
    (lambda: viz.TransformationFigure(nf.Flow([], dim=2)), ValueError, "no layers"),
    (lambda: viz.TransformationFigure(nf.Planar(2)), TypeError, "nflesson.Flow"),
    (lambda: viz.TransformationFigure(nf.flows.planar(2), data=torch.zeros(5, 3)), ValueError, "columns"),
    (lambda: viz.save_transformation_gif(nf.flows.planar(2), "never.gif", frames=0), ValueError, "frames must be"),
    (lambda: viz.save_transformation_gif(nf.flows.planar(2), "never.gif", frames=1), ValueError, "frames must be"),
    (lambda: widgets.TransformationPlayer(nf.flows.planar(2), frames=2.5), TypeError, "frames must be"),
])
def test_bad_arguments_say_what_is_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_player_slider_changes_the_picture_and_play_drives_it():
    player = widgets.TransformationPlayer(trained_looking("planar"), frames=10, n_points=100)
    assert player.slider.value == player.slider.max == 3 and player.error is None
    last = player.image.value
    player.slider.value = 1.5
    assert player.image.value != last and player.error is None
    offsets = np.asarray(player.frame.points.get_offsets())
    player.play.value = 0
    assert player.slider.value == 0
    assert not np.allclose(offsets, np.asarray(player.frame.points.get_offsets()))
    bundle = player._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle


def test_deep_flows_are_not_eased_layer_by_layer():
    assert np.allclose(viz.layer_times(32, 48), np.linspace(0, 32, 48))


def continuous_looking(dim=2, solver=None):
    """A Flow holding one ContinuousFlow with a random (non-zero) velocity."""
    torch.manual_seed(0)
    velocity = randomize(nf.VelocityMLP(dim, hidden=8), scale=0.3)
    return nf.Flow([nf.ContinuousFlow(dim, velocity, **(solver or dict(rtol=1e-6, atol=1e-6)))])


def test_a_continuous_flow_is_drawn_along_its_ode_time():
    flow = continuous_looking()
    figure = viz.TransformationFigure(flow, n_points=100, lines=5, time_steps=4)
    assert figure.layers == 1 and figure.continuous
    figure.render(0.0)
    base = torch.tensor(np.asarray(figure.points.get_offsets()), dtype=torch.float32)
    assert base.std() > 0.5 and figure.title.get_text().startswith("the base")
    ode = flow.layers[0]
    with torch.no_grad():
        path = ode.trajectory(base, torch.linspace(0, 1, 9))
    figure.render(0.5)  # stage 2 of 4
    assert np.allclose(np.asarray(figure.points.get_offsets()), path[4].numpy(), atol=1e-4)
    assert "along the ODE" in figure.title.get_text() and "t = 0.50" in figure.title.get_text()
    figure.render(0.625)  # halfway between the stages at t = 0.5 and 0.75
    assert np.allclose(np.asarray(figure.points.get_offsets()), (0.5 * path[4] + 0.5 * path[6]).numpy(), atol=1e-4)
    figure.render(1.0)
    with torch.no_grad():
        assert np.allclose(np.asarray(figure.points.get_offsets()), flow(base)[0].numpy(), atol=1e-4)
    assert "the data" in figure.title.get_text()
    assert np.allclose(figure.times(9), viz.layer_times(1, 9))  # eased at both ends


def test_a_continuous_flows_density_panel_and_way_back_follow_the_ode():
    flow = continuous_looking(solver=dict(method="rk4", steps=8))
    data = nf.data.get("moons").sample(50, generator=torch.Generator().manual_seed(0))
    figure = viz.TransformationFigure(flow, n_points=50, lines=5, density=True, data=data, time_steps=2,
                                      bounds=((-3, 3), (-3, 3)), solver=dict(method="rk4", steps=16))
    assert flow.layers[0].steps == 8  # the figure's solver settings were for its own solves
    _, points = viz.grid_points(((-3, 3), (-3, 3)), 90)
    with torch.no_grad(), flow.layers[0].solver(steps=16):
        final = flow.log_prob(points).exp().reshape(90, 90).numpy()
        back = flow.inverse(data)[0].numpy()
    figure.render(1.0)
    assert np.allclose(figure.density_image.get_array(), final / final.max(), atol=1e-5)
    assert np.allclose(np.asarray(figure.back_points.get_offsets()), back, atol=1e-5)
    figure.render(0.0)
    base = np.exp(-0.5 * (points**2).sum(-1).numpy()).reshape(90, 90)
    assert np.allclose(figure.density_image.get_array(), base / base.max(), atol=1e-6)
    assert np.allclose(np.asarray(figure.back_points.get_offsets()), data.numpy())


def test_a_one_d_continuous_flow_shows_its_exact_density_and_plays_in_ode_time(tmp_path):
    flow = continuous_looking(1).double()
    figure = viz.TransformationFigure(flow, n_points=100, time_steps=3)
    figure.render(1.0)
    x, shown = (np.asarray(v) for v in figure.density_line.get_data())
    with torch.no_grad():
        exact = flow.log_prob(torch.tensor(x).unsqueeze(-1)).exp().numpy()
    assert np.allclose(shown, exact, rtol=1e-4)
    player = widgets.TransformationPlayer(continuous_looking(), frames=6, n_points=50, lines=3, time_steps=2)
    assert player.slider.description == "ODE time" and player.slider.max == 1.0 and player.error is None
    player.play.value = 2
    assert 0 < player.slider.value < 1 and player.error is None
    path = viz.save_transformation_gif(continuous_looking(), tmp_path / "ode.gif", frames=5, n_points=50,
                                       time_steps=2)
    with Image.open(path) as gif:
        assert gif.n_frames == 5
    with pytest.raises(ValueError, match="time_steps"):
        viz.TransformationFigure(continuous_looking(), time_steps=0)
    with pytest.raises(ValueError, match="method"):
        viz.TransformationFigure(continuous_looking(), solver=dict(method="leapfrog"))
