"""Interactive widgets (ipywidgets): a player that scrubs through a training History without
retraining, a player of the learned transformation, explorers whose sliders redraw a map's
effect live, and an explorer of a conditional flow q(x | c) over its context.

Callbacks never fail silently: an exception is printed into the widget's output area (where
ipywidgets would otherwise swallow it) and kept in ``.error``.
"""

import base64
import contextlib
import io
import math
import traceback

import numpy as np
import torch
from matplotlib.figure import FigureBase

try:
    import ipywidgets as widgets
    from IPython.display import clear_output, display
except ImportError as missing:  # the flow library installed without the course extra
    raise ImportError("nflesson.widgets needs ipywidgets, part of the course extra: "
                      "pip install 'nflesson[course]'") from missing

from . import viz
from .bijector import Bijector
from .checks import check_bounds, check_callable, check_int, check_number, check_seed, type_name
from .elementwise import Affine, Exp, Sigmoid
from .flow import Flow
from .metrics import mean_and_error
from .planar_radial import Planar, Radial

ONE_D_MAPS = ("affine", "exp", "sigmoid")


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


def _with_picture(bundle, png, what):
    """Add a PNG (a BytesIO) to a widget's display bundle: JupyterLab shows the live widget,
    pages without a kernel (GitHub, nbviewer) show the picture."""
    bundle["image/png"] = base64.b64encode(png.getvalue()).decode()
    bundle["text/plain"] = f"({what}: run the notebook to use the controls)"
    return bundle


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
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=72)
        return _with_picture(super()._repr_mimebundle_(**kwargs), buffer, "interactive figure")

    def _redraw(self, *_):
        with _errors_shown_in(self):
            self._draw()
            self.draws += 1
            with self.output:
                clear_output(wait=True)
                display(self.fig)


class _Player(widgets.VBox):
    """Controls above an Image widget into which ``self.frame`` (a blitted viz figure) renders
    the frame ``self.slider.value`` whenever the slider moves; errors go to an Output area."""

    def __init__(self, controls):
        self.image = widgets.Image(format="png")
        self.output = widgets.Output()  # where errors are shown
        self.error = None
        self.slider.observe(self._update, names="value")
        super().__init__([widgets.HBox(controls), self.image, self.output])
        self._update()

    def _update(self, *_):
        with _errors_shown_in(self):
            buffer = io.BytesIO()
            self.frame.render(self.slider.value).save(buffer, format="png")
            self.image.value = buffer.getvalue()


class TrainingPlayer(_Player):
    """Play button, slider and speed control over the snapshots of a ``History``: samples vs
    target, model density and loss curve, all from the stored snapshots (no retraining).
    Frames are blitted into an Image widget, so scrubbing is smooth. ``reference`` (a number or
    a (value, label) pair) and ``reference_label`` draw a labelled line on the loss panel, as in
    ``viz.SnapshotFigure``. A conditional run shows one column per context of ``history.context``
    (samples given c, density q(x | c)); ``figsize`` None: the figure's own size for the case."""

    def __init__(self, history, reference=None, figsize=None, reference_label=None):
        viz._check_history(history)
        viz.reference_line(reference, reference_label, history.objective)
        if figsize is not None:
            viz._check_figsize(figsize)
        last = len(history.snapshots) - 1
        self.history = history
        self.play = widgets.Play(min=0, max=last, step=1, interval=200, description="play")
        self.slider = widgets.IntSlider(min=0, max=last, description="snapshot", continuous_update=True)
        self.speed = widgets.Dropdown(options=[("slow", 500), ("normal", 200), ("fast", 60)], value=200,
                                      description="speed", layout=widgets.Layout(width="180px"))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        widgets.link((self.speed, "value"), (self.play, "interval"))
        self.frame = viz.SnapshotFigure(history, reference, figsize=figsize, reference_label=reference_label)
        super().__init__([self.play, self.slider, self.speed])

    @property
    def step(self):
        """The training step of the snapshot on show."""
        return self.history.snapshots[self.slider.value].step

    def _repr_mimebundle_(self, **kwargs):
        """The live player, plus a PNG of the trained model (the last snapshot) for pages
        without a kernel (GitHub, nbviewer)."""
        buffer = io.BytesIO()
        self.frame.render(len(self.history.snapshots) - 1).save(buffer, format="png")
        self.frame.render(self.slider.value)
        return _with_picture(super()._repr_mimebundle_(**kwargs), buffer, "training player")


class TransformationPlayer(_Player):
    """A trained flow's learned transformation (``viz.TransformationFigure``: base samples and a
    grid carried to the data, layer by layer) under a Play button and a slider over layer time
    t: 0 is the base, K (the number of layers) the data, fractional values lie between two
    layers; for a continuous-time flow the slider is its ODE time, from 0 to 1. Play runs
    through ``frames`` eased times from the base to the data; the player starts on the data.
    ``options`` go to the figure (density=True, data=..., n_points, time_steps, ...); a
    conditional flow needs ``context=c`` (a number for a context of width 1, else a (k,) tensor):
    the player shows the base carried into q(x | c)."""

    def __init__(self, flow, frames=48, interval=80, **options):
        if not isinstance(flow, Flow):
            raise TypeError(f"TransformationPlayer shows the learned transformation of a nflesson.Flow, got "
                            f"{type_name(flow)}")
        frames = viz._check_frames(frames)
        check_int(interval, "interval (milliseconds per frame)", low=1)
        self.frame = viz.TransformationFigure(flow, **options)
        layers = self.frame.layers
        self.times = self.frame.times(frames)
        self.play = widgets.Play(min=0, max=frames - 1, value=frames - 1, step=1, interval=interval,
                                 description="play")
        self.slider = widgets.FloatSlider(min=0.0, max=float(layers), value=float(layers), step=0.01,
                                          description="ODE time" if self.frame.continuous else "layer time",
                                          readout_format=".2f", continuous_update=True)
        self.play.observe(self._follow_play, names="value")
        super().__init__([self.play, self.slider])

    def _follow_play(self, change):
        self.slider.value = float(self.times[change["new"]])

    def _repr_mimebundle_(self, **kwargs):
        """The live player, plus a PNG of the frame on show for pages without a kernel."""
        return _with_picture(super()._repr_mimebundle_(**kwargs), io.BytesIO(self.image.value),
                             "learned transformation player")


class Explorer(_Figure):
    """Sliders (any ipywidgets value widgets, given by keyword) that call
    ``draw(fig, **values)`` on a cleared figure whenever one of them moves."""

    def __init__(self, draw, figsize=(10, 3.2), **controls):
        check_callable(draw, "draw", "a function draw(fig, **values) that draws on the figure it is given")
        viz._check_figsize(figsize)
        for name, control in controls.items():
            if not isinstance(control, widgets.ValueWidget):
                raise TypeError(f"the control {name}= must be an ipywidgets value widget (a slider, a dropdown, a "
                                f"checkbox, ...), got {type_name(control)}")
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


# The scales a float32 Affine layer holds: their logs (from -85.2 to 87.5) and exp(log_scale)
# are finite, normal float32 numbers, so the map neither collapses (scale 0) nor overflows.
ONE_D_SCALES = (1e-37, 1e38)


def one_d_map(kind, scale, shift):
    """x = f(scale * z + shift) for f in {identity ("affine"), "exp", "sigmoid"}, as a float32
    Flow; ``scale`` is a number from 1e-37 to 1e38 (``ONE_D_SCALES``: the float32 layer holds
    log(scale) and exp(log(scale)) as finite numbers there), ``shift`` a finite number."""
    _check_kind(kind)
    value = check_number(scale, "scale", low=0, low_open=True)
    low, high = ONE_D_SCALES
    if not low <= value <= high:
        raise ValueError(f"scale must be from {low:g} to {high:g}, the scales a float32 layer holds, got {value!r} "
                         f"(log(scale) = {math.log(value):.4g}: exp(log_scale) would "
                         f"{'underflow' if value < low else 'overflow to inf'} in float32)")
    shift = check_number(shift, "shift")  # a float, also when given as a one-element tensor
    affine = Affine(1)
    with torch.no_grad():
        affine.log_scale.fill_(float(torch.tensor(value).log()))  # a float32 log, as lessons have always had
        affine.shift.fill_(shift)
    outer = {"affine": [], "exp": [Exp()], "sigmoid": [Sigmoid()]}[kind]
    return Flow([affine] + outer, dim=1)


def _check_kind(kind):
    if not isinstance(kind, str):
        raise TypeError(f"kind must be one of {', '.join(map(repr, ONE_D_MAPS))}, got {type_name(kind)}")
    if kind not in ONE_D_MAPS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, ONE_D_MAPS))}, got {kind!r}")
    return kind


def explore_change_of_variables(kind="exp"):
    """Pick a 1D map x = f(a z + b) and move a and b: base density, the map, and the pushed
    density against a histogram of pushed samples. Tick the box to drop the Jacobian factor."""
    _check_kind(kind)

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


def draw_layer(fig, layer, bounds=((-3, 3), (-3, 3)), title=""):
    """Two panels: N(0, I) pushed through ``layer`` (its exact density) and the warped grid.
    ``layer`` is a Bijector of dim 2 that maps the plane onto itself (not Exp or Sigmoid)."""
    if not isinstance(fig, FigureBase):
        raise TypeError(f"fig must be a matplotlib Figure or SubFigure, got {type_name(fig)}")
    if not isinstance(layer, Bijector):
        raise TypeError(f"layer must be a nflesson Bijector of the plane (e.g. nf.Planar(2)), got {type_name(layer)}")
    if layer.dim != 2:
        raise ValueError(f"layer must act on the plane (dim 2), got dim = {layer.dim}: the density panel needs a map "
                         f"of R^2 onto R^2 (Exp and Sigmoid, of dim None, map the plane onto a part of it only)")
    check_bounds(bounds, 2)
    viz._check_title(title)
    density_ax, grid_ax = fig.subplots(1, 2)
    flow = Flow([layer], dim=2)
    viz.plot_density(flow.log_prob, bounds, density_ax, size=120, title="pushed density")
    viz.plot_warped_grid(layer, bounds, grid_ax, lines=15, resolution=100, color="0.3", title="warped grid")
    grid_ax.set(xlim=bounds[0], ylim=bounds[1])
    fig.suptitle(title, fontsize=10)
    return density_ax, grid_ax


def explore_planar():
    """Sliders for w, u and b of one planar layer x = z + u tanh(w.z + b) (u is the effective,
    constrained u_hat of nflesson.Planar): its density and its grid. The line w.z + b = 0 is
    where the layer acts most; u is the direction it pushes."""

    def draw(fig, w1, w2, u1, u2, b):
        w = torch.tensor([w1, w2])
        u_hat, moved = Planar.nearest_invertible(w, torch.tensor([u1, u2]))
        adjusted = "  (u moved so that w.u >= -1)" if moved else ""
        layer = Planar.with_parameters(w, u_hat, b)
        density_ax, grid_ax = draw_layer(fig, layer, title=f"w.u = {float(w @ u_hat):.2f}{adjusted}")
        if w1 or w2:  # the line w.z + b = 0
            t = torch.linspace(-5, 5, 2)
            normal = torch.tensor([w1, w2]) / (w1**2 + w2**2)
            point = -b * normal
            direction = torch.tensor([-w2, w1])
            line = point + t[:, None] * direction
            for ax in (density_ax, grid_ax):
                ax.plot(line[:, 0], line[:, 1], color="w" if ax is density_ax else viz.MODEL_COLOR, ls="--", lw=1)
        grid_ax.annotate("", xy=tuple(u_hat.tolist()), xytext=(0, 0),
                         arrowprops=dict(arrowstyle="->", color=viz.MODEL_COLOR, lw=2))

    return Explorer(
        draw, figsize=(9, 4),
        w1=_slider(1.0, -3, 3, 0.1, "w[0]"), w2=_slider(-1.0, -3, 3, 0.1, "w[1]"),
        u1=_slider(1.0, -3, 3, 0.1, "u[0]"), u2=_slider(0.0, -3, 3, 0.1, "u[1]"),
        b=_slider(0.0, -2, 2, 0.1, "b"),
    )


def explore_radial():
    """Sliders for the centre z0 and alpha, beta of one radial layer x = z + beta (z - z0) / (alpha + r):
    beta > 0 pushes mass away from z0, beta < 0 pulls it in (never below -alpha)."""
    def draw(fig, x0, y0, alpha, beta):
        clamped = max(beta, -alpha)
        layer = Radial.with_parameters([x0, y0], alpha, max(beta, -alpha + 1e-9))  # beta = -alpha: the limit
        note = "" if clamped == beta else f"  (beta held at -alpha = {-alpha:.2f})"
        density_ax, grid_ax = draw_layer(fig, layer, title=f"alpha = {alpha:.2f}, beta = {clamped:.2f}{note}")
        for ax in (density_ax, grid_ax):
            ax.plot([x0], [y0], "x", color=viz.MODEL_COLOR, ms=8, mew=2)

    return Explorer(
        draw, figsize=(9, 4),
        x0=_slider(1.0, -2, 2, 0.1, "z0[0]"), y0=_slider(1.0, -2, 2, 0.1, "z0[1]"),
        alpha=_slider(0.5, 0.05, 3, 0.05, "alpha"), beta=_slider(2.0, -3, 5, 0.1, "beta"),
    )


class ConditionalExplorer(_Figure):
    """A trained conditional flow q(x | c) explored over its context c, without retraining (see
    ``explore_conditional``, which makes one). Three panels: the true density p(x | c) of the
    target, the model density q(x | c) on the same colour scale (p's peak), and the gap
    KL(p(. | c) || q(. | c)) over c (the training range shaded, the current c marked; a bar per
    class for a class context). The title gives the gap at the current c, in nats with its
    standard error, estimated from ``n_samples`` samples of p(x | c) drawn with the fixed
    ``seed``: the same c always gives the same number.

    ``control`` is the slider (``controls``: one per entry for a context of several numbers);
    ``context`` the (k,) context on show, ``gap`` its ``nflesson.metrics.Gap``; ``curve`` the
    (contexts, gaps) of the third panel (None without it)."""

    def __init__(self, flow, target, context_range=None, bounds=None, grid_size=100, n_samples=2000, seed=0,
                 curve_points=13, figsize=(12, 3.9)):
        self.kind, ranges = _check_explore_conditional(flow, target, context_range, bounds, grid_size, n_samples, seed,
                                                       curve_points, figsize)
        self.flow, self.target, self.n_samples, self.seed = flow, target, int(n_samples), seed
        self.bounds = check_bounds(bounds if bounds is not None else target.bounds, 2)
        self.ranges = ranges
        self.training_range = _training_range(target)
        k, dtype = flow.context_size, flow.dtype or torch.get_default_dtype()
        self.dtype = dtype
        _, self.grid = viz.grid_points(self.bounds, grid_size, dtype=torch.float64)
        self.grid_size = grid_size
        if self.kind == "class":
            start = _class_of(getattr(target, "snapshot_contexts", None))
            self.controls = [widgets.IntSlider(value=start, min=0, max=k - 1, description="class",
                                               continuous_update=False)]
        else:
            middle = _middle_context(target, ranges)
            self.controls = [
                widgets.FloatSlider(value=value, min=lo, max=hi, step=(hi - lo) / 200,
                                    description="c" if k == 1 else f"c[{j}]", continuous_update=False,
                                    readout_format=".3g")
                for j, (value, (lo, hi)) in enumerate(zip(middle, ranges))]
        self.control = self.controls[0]
        self.curve = None
        if curve_points and (self.kind == "class" or k == 1):
            self.curve = self._gap_curve(curve_points)
        super().__init__(self.controls, figsize)
        self._build()
        for control in self.controls:
            control.observe(self._redraw, names="value")
        self._redraw()

    # --- what is shown ---------------------------------------------------------------------------

    def context_of(self, value):
        """The (k,) context (float64) of a slider value: the one-hot vector of a class, the
        number(s) of a continuous context."""
        k = self.flow.context_size
        if self.kind == "class":
            return torch.nn.functional.one_hot(torch.tensor(int(value)), k).to(torch.float64)
        return torch.as_tensor(value, dtype=torch.float64).reshape(k)

    @torch.no_grad()
    def gap_at(self, contexts):
        """The gap KL(p(. | c) || q(. | c)) (a ``Gap``) for each row of ``contexts`` (m, k), each
        from ``n_samples`` samples of p(x | c) drawn with the explorer's seed, in one pass."""
        n = self.n_samples
        x = torch.cat([self.target.sample_given(c.expand(n, -1), generator=torch.Generator().manual_seed(self.seed))
                       for c in contexts]).to(torch.float64)
        c = contexts.repeat_interleave(n, 0)
        log_p = self.target.log_prob(x, c).to(torch.float64)
        log_q = self.flow.log_prob(x.to(self.dtype), c.to(self.dtype)).to(torch.float64)
        return [mean_and_error(terms) for terms in (log_p - log_q).reshape(len(contexts), n)]

    def _gap_curve(self, points):
        if self.kind == "class":
            values = list(range(self.flow.context_size))
        else:
            values = torch.linspace(*self.ranges[0], points, dtype=torch.float64).tolist()
        contexts = torch.stack([self.context_of(v) for v in values])
        return values, self.gap_at(contexts)

    @torch.no_grad()
    def _densities(self, context):
        """p(x | c) and q(x | c) on the grid, as (size, size) arrays (rows = y)."""
        size = self.grid_size
        p = self.target.log_prob(self.grid, context).to(torch.float64).exp().reshape(size, size).numpy()
        q = self.flow.log_prob(self.grid.to(self.dtype), context.to(self.dtype)).to(torch.float64)
        return p, q.exp().reshape(size, size).numpy()

    def _outside(self, context):
        """Whether ``context`` lies outside the target's training range (never for a class)."""
        if self.kind == "class" or self.training_range is None:
            return False
        return any(not lo <= v <= hi for v, (lo, hi) in zip(context.tolist(), self.training_range))

    # --- drawing ---------------------------------------------------------------------------------

    def _build(self):
        panels = 3 if self.curve is not None else 2
        axes = self.fig.subplots(1, panels)
        (x0, x1), (y0, y1) = self.bounds
        self.images = []
        for ax in axes[:2]:
            image = ax.imshow(np.zeros((self.grid_size, self.grid_size)), origin="lower", extent=(x0, x1, y0, y1),
                              cmap=viz.DENSITY_CMAP, aspect="equal", interpolation="bilinear", vmin=0, vmax=1)
            ax.set(xlim=(x0, x1), ylim=(y0, y1))  # equal axes: a ring looks round
            self.images.append(image)
        self.axes = list(axes)
        self.title = self.fig.suptitle("", fontsize=11)
        self.marker = None
        if self.curve is not None:
            self._draw_curve(axes[2])

    def _draw_curve(self, ax):
        values, gaps = self.curve
        nats = np.array([g.nats for g in gaps])
        errors = np.array([g.standard_error for g in gaps])
        if self.kind == "class":
            self.bars = ax.bar(values, nats, yerr=errors, color=viz.MODEL_COLOR, alpha=0.5, capsize=2)
            ax.set(xticks=values, xlabel="class", title="KL(p(.|c) || q(.|c)) per class")
        else:
            ax.plot(values, nats, color=viz.MODEL_COLOR, marker="o", ms=3, lw=1.5)
            ax.fill_between(values, nats - 2 * errors, nats + 2 * errors, color=viz.MODEL_COLOR, alpha=0.2, lw=0)
            if self.training_range is not None:
                lo, hi = self.training_range[0]
                ax.axvspan(lo, hi, color="0.85", zorder=0, label="training range")
                ax.legend(fontsize=8, loc="upper center")
            ax.set(xlabel="c", xlim=(values[0], values[-1]), title="KL(p(.|c) || q(.|c)) over c")
        ax.set(ylabel="nats")
        finite = np.isfinite(nats) & np.isfinite(errors)
        if finite.any():
            low, high = (nats - 2 * errors)[finite].min(), (nats + 2 * errors)[finite].max()
            ax.set_ylim(min(0.0, low) - 0.05 * (high - low), max(high + 0.1 * (high - low), 1e-3))
        (self.marker,) = ax.plot([], [], "o", color="k", ms=7, zorder=3)

    def _draw(self):
        context = self.context_of([control.value for control in self.controls] if len(self.controls) > 1
                                  else self.control.value)
        gap = self.gap_at(context[None])[0]
        p, q = self._densities(context)
        peak = float(p.max()) if np.isfinite(p.max()) and p.max() > 0 else 1.0
        label = viz.context_label(context)
        for image, values, name in zip(self.images, (p, q), ("true p", "model q")):
            image.set_data(values)
            image.set_clim(0, peak)
            image.axes.set_title(f"{name}(x | {label})")
        outside = self._outside(context)
        note = "   (outside the training range)" if outside else ""
        self.title.set_text(f"{label}:  KL(p(.|c) || q(.|c)) = {gap}   ({self.n_samples:,} samples of p(x | c)){note}")
        self.title.set_color("#b22222" if outside else "k")
        if self.marker is not None:
            where = int(context.argmax()) if self.kind == "class" else float(context[0])
            shown = min(gap.nats, self.marker.axes.get_ylim()[1]) if math.isfinite(gap.nats) else \
                self.marker.axes.get_ylim()[1]
            self.marker.set_data([where], [shown])
        self.context, self.gap = context.to(self.dtype), gap
        if self.draws == 0:  # lay out once, with every artist in place; later pictures only change data
            self.fig.canvas.draw()
            self.fig.set_layout_engine("none")


def explore_conditional(flow, target, context_range=None, bounds=None, grid_size=100, n_samples=2000, seed=0,
                        curve_points=13, figsize=(12, 3.9)):
    """A slider over the context c of a trained conditional 2D flow q(x | c) that redraws the
    model density q(x | c) beside the target's true p(x | c), without retraining, with the gap
    KL(p(. | c) || q(. | c)) in nats at that c (a Monte Carlo estimate from ``n_samples``
    samples of p(x | c) drawn with the fixed ``seed``, so that it is stable; its standard error
    beside it) and, in a third panel, that gap over c (``curve_points`` values of c over the
    slider's range, computed once; 0: no such panel).

    ``target`` is a conditional target with ``log_prob(x, context)``, ``sample_given``,
    ``context_size`` and ``dim`` (e.g. ``nflesson.data.get("ring_by_radius")``). A context of
    one number gets a slider over ``context_range`` (default: the target's ``context_bounds``,
    the training range, shaded in the third panel; widen it, e.g. ``context_range=(0.5, 4)``, to
    look outside, where the title turns red); a one-hot class context (e.g.
    ``gaussians_by_class``) a slider over the class, and the third panel a bar per class; a
    context of several numbers one slider per number (ranges: ``context_range`` as k (low, high)
    pairs, or the target's) and no third panel. ``bounds``: the box of the density panels
    (default: the target's), on a ``grid_size`` x ``grid_size`` grid. Returns a
    ``ConditionalExplorer``."""
    return ConditionalExplorer(flow, target, context_range, bounds, grid_size, n_samples, seed, curve_points,
                               figsize)


def _check_explore_conditional(flow, target, context_range, bounds, grid_size, n_samples, seed, curve_points,
                               figsize):
    """The checks of explore_conditional, before anything is computed or drawn: (the kind of
    context, "class" or "continuous", and its slider ranges, one (low, high) pair per number)."""
    if not isinstance(flow, Flow):
        what = f"the {'class' if isinstance(flow, type) else 'function'} {flow.__name__} itself: build a flow first" \
            if callable(flow) and hasattr(flow, "__name__") else type_name(flow)
        raise TypeError(f"flow must be a trained conditional nflesson.Flow (e.g. nf.flows.realnvp(2, context=1)), got "
                        f"{what}")
    if not flow.context_size:
        raise ValueError("flow is unconditional (it reads no context): explore_conditional shows a conditional flow "
                         "q(x | c), e.g. nf.flows.realnvp(2, context=1) trained with nf.fit on a conditional target")
    if flow.dim != 2:
        raise ValueError(f"explore_conditional draws densities of the plane: flow must have dim 2, got dim = "
                         f"{flow.dim}")
    needed = ("log_prob", "sample_given", "context_size", "dim")
    if isinstance(target, type) or not all(hasattr(target, name) for name in needed):
        got = f"the class {target.__name__} itself" if isinstance(target, type) else type_name(target)
        raise TypeError(f"target must be a conditional target (with {', '.join(needed)}), e.g. "
                        f"nflesson.data.get('ring_by_radius'), got {got}")
    k = flow.context_size
    if target.context_size != k:
        raise ValueError(f"the target's contexts have width {target.context_size} but the flow has context = {k}")
    if target.dim != 2:
        raise ValueError(f"the target has dim = {target.dim} but the flow has dim = 2")
    if bounds is None and not hasattr(target, "bounds"):
        raise ValueError("the target has no bounds: pass bounds=((xmin, xmax), (ymin, ymax)) for the density panels")
    check_bounds(bounds if bounds is not None else target.bounds, 2)
    check_int(grid_size, "grid_size", low=2)
    check_int(n_samples, "n_samples", low=2)
    check_seed(seed)
    check_int(curve_points, "curve_points")
    if curve_points == 1:
        raise ValueError("curve_points must be 0 (no curve of the gap over c) or at least 2, got 1")
    viz._check_figsize(figsize)
    kind = "class" if k > 1 and _one_hot(getattr(target, "snapshot_contexts", None)) else "continuous"
    if kind == "class":
        if context_range is not None:
            raise ValueError(f"context_range is for contexts of numbers; this target's context is a one-hot class "
                             f"label (classes 0..{k - 1}, one slider over them): leave it None, got {context_range!r}")
        return kind, None
    if context_range is None:
        if not hasattr(target, "context_bounds"):
            raise ValueError("the target has no context_bounds: pass context_range=(low, high), the range of the "
                             "slider over c")
        ranges = check_bounds(target.context_bounds, k, "the target's context_bounds")
    elif k == 1:
        ranges = (tuple(viz._check_range(context_range, "context_range")),)
        ranges = ((float(ranges[0][0]), float(ranges[0][1])),)
    else:
        ranges = check_bounds(context_range, k, "context_range")
    for end in (0, 1):  # the target must know the densities at both ends of the range
        context = torch.tensor([pair[end] for pair in ranges], dtype=torch.float64)
        try:
            target.log_prob(torch.zeros(1, 2, dtype=torch.float64), context)
        except (ValueError, TypeError) as refused:
            shown = ", ".join(f"{v:g}" for v in context.tolist())
            raise ValueError(f"context_range reaches c = {shown}, where the target has no "
                             f"density p(x | c) ({refused}): keep the slider's range inside the contexts the target "
                             "knows") from None
    return kind, ranges


def _one_hot(contexts):
    """Whether ``contexts`` (m, k) are one-hot rows (class labels)."""
    if not isinstance(contexts, torch.Tensor) or contexts.dim() != 2 or not len(contexts):
        return False
    return bool(((contexts == 0) | (contexts == 1)).all()) and bool((contexts.sum(1) == 1).all())


def _class_of(contexts):
    """The class of the first of the target's typical contexts (0 without them)."""
    return int(contexts[0].argmax()) if _one_hot(contexts) else 0


def _training_range(target):
    """The target's context_bounds (the range its contexts are drawn from), or None."""
    try:
        return check_bounds(target.context_bounds, target.context_size)
    except (AttributeError, TypeError, ValueError):
        return None


def _middle_context(target, ranges):
    """Where a continuous context's sliders start: the target's middle typical context if it
    lies in the ranges, else the middle of each range."""
    typical = getattr(target, "snapshot_contexts", None)
    if isinstance(typical, torch.Tensor) and typical.dim() == 2 and len(typical):
        middle = typical[(len(typical) - 1) // 2].tolist()
        if all(lo <= v <= hi for v, (lo, hi) in zip(middle, ranges)):
            return middle
    return [(lo + hi) / 2 for lo, hi in ranges]
