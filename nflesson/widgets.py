"""Interactive widgets (ipywidgets): a player that scrubs through a training History without
retraining, and explorers whose sliders redraw a map's effect live.

Callbacks never fail silently: an exception is printed into the widget's output area (where
ipywidgets would otherwise swallow it) and kept in ``.error``.
"""

import base64
import contextlib
import io
import traceback

import ipywidgets as widgets
import torch
from IPython.display import clear_output, display

from . import viz
from .elementwise import Affine, Exp, Sigmoid
from .flow import Flow


@contextlib.contextmanager
def _errors_shown_in(widget):
    """Run a callback body; on an exception, print its traceback into ``widget.output`` (where the
    learner sees it) and keep it in ``widget.error`` instead of letting ipywidgets swallow it."""
    try:
        yield
        widget.error = None
    except Exception as exc:
        widget.error = exc
        widget.output.outputs = ()
        widget.output.append_stderr(traceback.format_exc())


class _Figure(widgets.VBox):
    """Controls above an Output area showing one matplotlib figure, redrawn by ``_draw``."""

    def __init__(self, controls, figsize):
        self.output = widgets.Output()
        self.fig = viz.agg_figure(figsize)
        self.fig.set_layout_engine("constrained")
        self.error = None
        self.draws = 0
        super().__init__(controls + [self.output])

    def _repr_mimebundle_(self, **kwargs):
        """The live widget, plus a PNG of the current figure for pages without a kernel
        (GitHub, nbviewer), which cannot show widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=72)
        bundle["image/png"] = base64.b64encode(buffer.getvalue()).decode()
        bundle["text/plain"] = "(interactive figure: run the notebook to use the controls)"
        return bundle

    def _redraw(self, *_):
        with _errors_shown_in(self):
            self._draw()
            self.draws += 1
            with self.output:
                clear_output(wait=True)
                display(self.fig)


class TrainingPlayer(widgets.VBox):
    """Play button, slider and speed control over the snapshots of a ``History``: samples vs
    target, model density and loss curve, all from the stored snapshots (no retraining).
    Frames are blitted into an Image widget, so scrubbing is smooth."""

    def __init__(self, history, reference=None, figsize=(10, 3.2)):
        last = len(history.snapshots) - 1
        self.history = history
        self.play = widgets.Play(min=0, max=last, step=1, interval=200, description="play")
        self.slider = widgets.IntSlider(min=0, max=last, description="snapshot", continuous_update=True)
        self.speed = widgets.Dropdown(options=[("slow", 500), ("normal", 200), ("fast", 60)], value=200,
                                      description="speed", layout=widgets.Layout(width="180px"))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        widgets.link((self.speed, "value"), (self.play, "interval"))
        self.frame = viz.SnapshotFigure(history, reference, figsize=figsize)
        self.image = widgets.Image(format="png")
        self.output = widgets.Output()  # where errors are shown
        self.error = None
        self.slider.observe(self._update, names="value")
        super().__init__([widgets.HBox([self.play, self.slider, self.speed]), self.image, self.output])
        self._update()

    @property
    def step(self):
        """The training step of the snapshot on show."""
        return self.history.snapshots[self.slider.value].step

    def _update(self, *_):
        with _errors_shown_in(self):
            buffer = io.BytesIO()
            self.frame.render(self.slider.value).save(buffer, format="png")
            self.image.value = buffer.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.image.value).decode()
        bundle["text/plain"] = "(training player: run the notebook to scrub through the training)"
        return bundle


class Explorer(_Figure):
    """Sliders (any ipywidgets value widgets, given by keyword) that call
    ``draw(fig, **values)`` on a cleared figure whenever one of them moves."""

    def __init__(self, draw, figsize=(10, 3.2), **controls):
        self.draw_function, self.controls = draw, controls
        super().__init__(list(controls.values()), figsize)
        for control in controls.values():
            control.observe(self._redraw, names="value")
        self._redraw()

    @property
    def values(self):
        return {name: control.value for name, control in self.controls.items()}

    def _draw(self):
        self.fig.clear()
        self.draw_function(self.fig, **self.values)


def _slider(value, lo, hi, step, description):
    return widgets.FloatSlider(value=value, min=lo, max=hi, step=step, description=description,
                               continuous_update=False, readout_format=".2f")


def one_d_map(kind, scale, shift):
    """x = f(scale * z + shift) for f in {identity ("affine"), "exp", "sigmoid"}, as a Flow."""
    affine = Affine(1)
    with torch.no_grad():
        affine.log_scale.fill_(float(torch.tensor(scale).log()))
        affine.shift.fill_(shift)
    outer = {"affine": [], "exp": [Exp()], "sigmoid": [Sigmoid()]}[kind]
    return Flow([affine] + outer, dim=1)


def explore_change_of_variables(kind="exp"):
    """Pick a 1D map x = f(a z + b) and move a and b: base density, the map, and the pushed
    density against a histogram of pushed samples. Tick the box to drop the Jacobian factor."""

    def draw(fig, kind, scale, shift, without_jacobian):
        viz.plot_1d_map(one_d_map(kind, scale, shift), axes=fig.subplots(1, 3), n=5000,
                        without_jacobian=without_jacobian)

    return Explorer(
        draw, figsize=(11, 3.2),
        kind=widgets.Dropdown(options=["affine", "exp", "sigmoid"], value=kind, description="map f"),
        scale=_slider(1.0, 0.2, 3.0, 0.05, "scale a"),
        shift=_slider(0.0, -2.0, 2.0, 0.05, "shift b"),
        without_jacobian=widgets.Checkbox(value=False, description="drop the Jacobian"),
    )


def explore_linear_map():
    """Move the four entries of A and watch the unit square become a parallelogram whose area
    is |det A|; the grid shows how the whole plane is stretched."""

    def draw(fig, a11, a12, a21, a22):
        matrix = torch.tensor([[a11, a12], [a21, a22]])
        ax = fig.subplots()
        viz.plot_warped_grid(lambda p: p @ matrix, ((-2, 2), (-2, 2)), ax, lines=9, color="0.6")
        square = torch.tensor([[0.0, 0], [1, 0], [1, 1], [0, 1], [0, 0]])
        ax.fill(square[:, 0], square[:, 1], color=viz.BASE_COLOR, alpha=0.3, label="unit square")
        image = square @ matrix
        ax.fill(image[:, 0], image[:, 1], color=viz.MODEL_COLOR, alpha=0.5, label="its image")
        det = torch.linalg.det(matrix).item()
        ax.set(xlim=(-4, 4), ylim=(-4, 4), title=f"x = z A:  area ratio |det A| = {abs(det):.2f}")
        ax.legend(loc="lower right", fontsize=8)

    return Explorer(
        draw, figsize=(5, 5),
        a11=_slider(2.0, -3, 3, 0.1, "A[0,0]"), a12=_slider(0.5, -3, 3, 0.1, "A[0,1]"),
        a21=_slider(0.0, -3, 3, 0.1, "A[1,0]"), a22=_slider(1.0, -3, 3, 0.1, "A[1,1]"),
    )
