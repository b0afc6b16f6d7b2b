"""Figures for the lessons. Every function draws on the axes it is given (or new ones) and
returns the figure, so lessons can compose panels. Colours are shared across lessons:
target/data in TARGET_COLOR, the model in MODEL_COLOR, the base in BASE_COLOR, densities in
DENSITY_CMAP.

Colours stay distinguishable for colour-blind readers; this is the one place that picks them.
Densities use viridis (perceptually uniform, readable in grey and under every common colour-vision
deficiency). Categorical colours (target, model, base; the curves of several models; classes) are
Okabe & Ito's palette (Color Universal Design, 2008): every pair of its eight colours stays apart
when protanopia, deuteranopia or tritanopia is simulated (tests/test_viz_widgets.py checks it with
Machado et al.'s 2009 model). Ten classes (the digits) get ``class_style(k)``: Okabe-Ito colour k
mod 8 and a marker of its own, so the two colours used twice are told apart by shape. Points
coloured by where they start (``position_colors``, the transformation pictures) use a hue wheel
that darkens outwards: there colour follows neighbourhoods, and brightness carries the radius.

Every function checks its arguments before it draws anything or writes a file (nflesson.checks):
bounds are one (low, high) pair of finite numbers with low < high per dimension, grid sizes are
integers >= 2, a GIF's fps is a number in (0, 100] (a GIF counts time in hundredths of a second)."""

import math
import numbers
import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from PIL import Image

from .bijector import Bijector
from .checks import (check_batch, check_bounds, check_callable, check_finite_rows, check_flag, check_int, check_number,
                     check_positive, check_positive_int, check_seed, type_name)
from .flow import Flow, continuous_of
from .history import History

OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "bluish green": "#009E73", "vermillion": "#D55E00",
             "reddish purple": "#CC79A7", "sky blue": "#56B4E9", "black": "#000000", "yellow": "#F0E442"}
CATEGORICAL = tuple(OKABE_ITO.values())  # for k categories take CATEGORICAL[:k]; yellow (pale on white) comes last
CLASS_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")
TARGET_COLOR = OKABE_ITO["blue"]
MODEL_COLOR = OKABE_ITO["orange"]
BASE_COLOR = OKABE_ITO["bluish green"]
DENSITY_CMAP = "viridis"
ENTROPY_LABEL = "entropy of the target: the lowest expected NLL"
CONDITIONAL_ENTROPY_LABEL = "H(X | C): the lowest expected NLL"
DEFAULT_REFERENCE_LABELS = {"maximum likelihood": ENTROPY_LABEL, "reverse KL": "-log Z: the loss at KL = 0"}


def _check_ax(ax, name="ax"):
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"{name} must be matplotlib Axes (e.g. from fig.subplots()) or None, got {type_name(ax)}")
    return ax


def _check_figsize(figsize, name="figsize"):
    """``figsize`` if it is a (width, height) pair of numbers > 0 (inches), else TypeError or ValueError."""
    if isinstance(figsize, (str, bytes)) or not hasattr(figsize, "__len__"):
        raise TypeError(f"{name} must be a (width, height) pair in inches, e.g. (10, 3.2), got {type_name(figsize)}")
    if len(figsize) != 2:
        raise ValueError(f"{name} must be a (width, height) pair in inches, got {len(figsize)} values: {figsize!r}")
    check_number(figsize[0], f"{name} width", low=0, low_open=True, high=100)
    check_number(figsize[1], f"{name} height", low=0, low_open=True, high=100)
    return figsize


def _check_dpi(dpi):
    check_number(dpi, "dpi", low=1, high=1000)
    return dpi


def _check_range(pair, name):
    """``pair`` if it is a (low, high) pair of finite numbers with low < high, else raise."""
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__"):
        raise TypeError(f"{name} must be a (low, high) pair of numbers, got {type_name(pair)} {pair!r}")
    if len(pair) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {len(pair)} values: {pair!r}")
    low, high = check_number(pair[0], f"{name}'s low end"), check_number(pair[1], f"{name}'s high end")
    if not low < high:
        raise ValueError(f"{name} must have low < high, got {pair!r}")
    return pair


def _check_title(title, name="title"):
    if title is not None and not isinstance(title, str):
        raise TypeError(f"{name} must be a string or None, got {type_name(title)}")
    return title


def _check_color(color, name="color", count=None):
    """``color`` if it is a matplotlib colour (or, given ``count``, a sequence of ``count`` colours)."""
    sequence = not isinstance(color, str) and hasattr(color, "__len__")
    if count is not None and sequence and len(color) == count:
        try:
            matplotlib.colors.to_rgba_array(color)
            return color
        except (TypeError, ValueError):
            pass
    if not matplotlib.colors.is_color_like(color):
        per_point = "" if count is None else f", or one colour per point (a sequence of {count} colours)"
        got = f"{len(color)} values" if count is not None and sequence and len(color) != count else None
        got = f"{got} for {count} points: {color!r}" if got else repr(color)
        raise ValueError(f"{name} must be a matplotlib colour (a name such as 'k' or 'tab:blue', a '#rrggbb' string "
                         f"or an RGB tuple){per_point}, got {got}")
    return color


def _check_cmap(cmap):
    if isinstance(cmap, matplotlib.colors.Colormap):
        return cmap
    if not isinstance(cmap, str):
        raise TypeError(f"cmap must be the name of a matplotlib colormap or a Colormap, got {type_name(cmap)}")
    if cmap not in matplotlib.colormaps:
        raise ValueError(f"cmap {cmap!r} is not a matplotlib colormap; e.g. 'viridis', 'magma', 'Blues'")
    return cmap


def _check_fps(fps):
    """Frames per second of a GIF: a number in (0, 100], as a GIF counts time in hundredths of a second."""
    return check_number(fps, "fps", low=0, low_open=True, high=100)


def _check_gif_path(path):
    """``path`` if it is a str or os.PathLike ending in .gif in a folder that exists, else raise."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name (str or pathlib.Path) ending in .gif, got {type_name(path)}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text.lower().endswith(".gif"):
        raise ValueError(f"path must end in .gif (the file is a GIF), got {text!r}")
    folder = os.path.dirname(text)
    if folder and not os.path.isdir(folder):
        raise ValueError(f"the folder of path {text!r} does not exist; create it first (os.makedirs({folder!r}))")
    return path


def _check_log_prob(log_prob, what):
    """``log_prob`` if it is a function of points returning log-densities, else TypeError; a flow or
    bijector given itself (calling one maps points, it does not score them) is told what to pass."""
    if isinstance(log_prob, Bijector):
        fix = "pass flow.log_prob, the flow's log-density" if callable(getattr(log_prob, "log_prob", None)) else \
            "a bijector has no density: wrap it as nf.Flow([layer]) and pass flow.log_prob"
        raise TypeError(f"log_prob must be {what}, got the {type_name(log_prob)} itself (calling it maps points to "
                        f"(points, log_det)): {fix}")
    return check_callable(log_prob, "log_prob", what)


def _dtype_of(function):
    """The dtype of the Bijector that ``function`` is, or is a method of (None for anything else)."""
    owner = function if isinstance(function, Bijector) else getattr(function, "__self__", None)
    return owner.dtype if isinstance(owner, Bijector) else None


def _check_history(history):
    """``history`` if it is a History with snapshots of a 1D or 2D run, else TypeError or ValueError."""
    fields = ("objective", "bounds", "grid", "target_samples", "losses", "snapshots")
    if not isinstance(history, History) and not all(hasattr(history, field) for field in fields):
        raise TypeError(f"history must be the nflesson.History that nf.fit returns (with {', '.join(fields)}), got "
                        f"{type_name(history)}")
    if not history.snapshots:
        raise ValueError("this History has no snapshots to draw (a run stopped before its first snapshot?)")
    if len(history.bounds) not in (1, 2) or history.grid is None:
        raise ValueError(f"the pictures of a run are drawn for 1D and 2D flows, but this History is of a "
                         f"{len(history.bounds)}D flow")
    return history


def _axes(ax, ncols=1, width=4.0, height=3.6):
    _check_ax(ax)
    if ax is not None:
        return (ax.figure, ax)
    fig, ax = plt.subplots(1, ncols, figsize=(width * ncols, height), layout="constrained")
    return fig, ax


def agg_figure(figsize, dpi=72):
    """A figure outside pyplot's list of open figures (nothing to close, never shown twice),
    drawn by Agg; notebooks display it with ``display(fig)``."""
    _check_figsize(figsize)
    _check_dpi(dpi)
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def grid_points(bounds, size=200, dtype=None):
    """The ticks along each axis and the (size^dim, dim) points of a regular grid over bounds,
    x varying fastest (so values reshape to (size, size) images with rows = y)."""
    check_bounds(bounds, None)
    check_int(size, "size", low=2)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype (torch.float32, torch.float64) or None, got {dtype!r}")
    ticks = [torch.linspace(lo, hi, size, dtype=dtype) for lo, hi in bounds]
    mesh = torch.meshgrid(*ticks, indexing="xy")
    return ticks, torch.stack([m.flatten() for m in mesh], -1)


@torch.no_grad()
def density_on_grid(log_prob, bounds, size=200):
    """exp(log_prob) on a size x size grid over 2D bounds, as a (size, size) array (rows = y).
    The grid has the dtype of the flow whose ``log_prob`` is given (else the default dtype)."""
    _check_log_prob(log_prob, "a function of points (n, 2), e.g. flow.log_prob")
    check_bounds(bounds, 2)
    check_int(size, "size", low=2)
    _, points = grid_points(bounds, size, dtype=_dtype_of(log_prob))
    values = log_prob(points)
    if not isinstance(values, torch.Tensor):
        hint = " (points, log_det) from a map? pass flow.log_prob" if isinstance(values, tuple) else ""
        raise TypeError(f"log_prob must return a tensor of log-densities, got {type_name(values)}{hint}")
    if tuple(values.shape) != (size * size,):
        raise ValueError(f"log_prob must return one log-density per grid point, shape ({size * size},), got shape "
                         f"{tuple(values.shape)}")
    return values.detach().exp().reshape(size, size).numpy()


def plot_density(log_prob, bounds, ax=None, size=200, title=None, cmap=DENSITY_CMAP, vmax=None):
    """Heatmap of a 2D density; ``log_prob`` is a callable (e.g. ``flow.log_prob``) or a
    (size, size) tensor of log-densities on the grid over ``bounds`` (e.g. a snapshot's).
    Give several panels the same ``vmax`` to compare their heights."""
    if isinstance(log_prob, torch.Tensor):
        if log_prob.dim() != 2 or not log_prob.is_floating_point():
            raise ValueError(f"log_prob given as a tensor must be a (size, size) floating grid of log-densities (a "
                             f"snapshot's log_density), got {log_prob.dtype} of shape {tuple(log_prob.shape)}")
    else:
        _check_log_prob(log_prob, "a function of points (e.g. flow.log_prob) or a (size, size) tensor")
    check_bounds(bounds, 2)
    _check_ax(ax)
    check_int(size, "size", low=2)
    _check_title(title)
    _check_cmap(cmap)
    if vmax is not None:
        check_positive(vmax, "vmax")
    if not isinstance(log_prob, torch.Tensor):
        values = density_on_grid(log_prob, bounds, size)
    fig, ax = _axes(ax)
    values = log_prob.detach().exp().numpy() if isinstance(log_prob, torch.Tensor) else values
    (x0, x1), (y0, y1) = bounds
    ax.imshow(values, origin="lower", extent=(x0, x1, y0, y1), cmap=cmap, aspect="auto", interpolation="bilinear",
              vmin=0, vmax=vmax)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), title=title)
    return fig


def plot_samples(samples, ax=None, bounds=None, color=MODEL_COLOR, label=None, size=3, alpha=0.5, title=None):
    """Scatter plot of (n, 2) samples."""
    check_batch(samples, 2, "samples", owner="scatter plot")
    if bounds is not None:
        check_bounds(bounds, 2)
    _check_ax(ax)
    _check_color(color, count=len(samples))
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string or None, got {type_name(label)}")
    check_positive(size, "size")
    check_number(alpha, "alpha", low=0, high=1)
    _check_title(title)
    fig, ax = _axes(ax)
    samples = samples.detach()
    ax.scatter(samples[:, 0], samples[:, 1], s=size, alpha=alpha, color=color, label=label, linewidths=0)
    if bounds is not None:
        ax.set(xlim=bounds[0], ylim=bounds[1])
    if title:
        ax.set_title(title)
    return fig


def plot_images(images, ax=None, shape=(8, 8), levels=17, row_labels=None, title=None):
    """Small grey images (rows, columns, h * w) (pixel levels 0..levels - 1, e.g. the digits)
    as one grid with a white gap between them, in one imshow (hundreds of small axes are slow);
    ``row_labels`` names the rows (e.g. the digit each row was sampled for)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 3:
        raise TypeError(f"images must be a tensor (rows, columns, pixels), got {type_name(images)}"
                        + (f" of shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) else ""))
    h, w = (check_positive_int(size, "shape") for size in shape)
    if images.shape[-1] != h * w:
        raise ValueError(f"images have {images.shape[-1]} pixels, but shape = {tuple(shape)} needs {h * w}")
    check_positive_int(levels, "levels")
    rows, columns = images.shape[:2]
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"row_labels must name each of the {rows} rows, got {len(row_labels)} labels")
    _check_ax(ax)
    _check_title(title)
    fig, ax = _axes(ax)
    canvas = torch.full((rows, h + 1, columns, w + 1), math.nan)
    canvas[:, :h, :, :w] = images.detach().float().reshape(rows, columns, h, w).transpose(1, 2)
    canvas = canvas.reshape(rows * (h + 1), columns * (w + 1))[:-1, :-1]
    ax.imshow(canvas.numpy(), cmap=matplotlib.colormaps["gray"].with_extremes(bad="white"), vmin=0, vmax=levels - 1)
    ax.set(xticks=[], yticks=[] if row_labels is None else [h / 2 - 0.5 + (h + 1) * i for i in range(rows)])
    if row_labels is not None:
        ax.set_yticklabels([str(label) for label in row_labels])
    ax.tick_params(length=0)
    ax.set_frame_on(False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


@torch.no_grad()
def plot_1d_map(bijector, z_range=(-4.0, 4.0), n=20_000, seed=0, axes=None, x_range=None, without_jacobian=False):
    """The change of variables in 1D, in three panels: the base density p_z = N(0, 1); the map
    x = f(z); the pushed density p_x(x) = p_z(z) / |f'(z)| (from the log-det) over a histogram
    of n pushed samples. ``without_jacobian`` adds the wrong curve p_z(f^{-1}(x))."""
    if not isinstance(bijector, Bijector):
        raise TypeError(f"bijector must be a 1D nflesson Bijector or Flow (e.g. nf.Flow([nf.Exp()], dim=1)), got "
                        f"{type_name(bijector)}")
    if bijector.dim not in (None, 1):
        raise ValueError(f"plot_1d_map draws a map of the line, a bijector of dim 1, got dim = {bijector.dim}")
    _check_range(z_range, "z_range")
    check_positive_int(n, "n")
    check_seed(seed)
    if axes is not None:
        if isinstance(axes, Axes) or not hasattr(axes, "__len__") or len(axes) != 3:
            raise TypeError(f"axes must be three matplotlib Axes (e.g. fig.subplots(1, 3)) or None, got "
                            f"{type_name(axes)}")
        for k, ax in enumerate(axes):
            _check_ax(ax, f"axes[{k}]")
    if x_range is not None:
        _check_range(x_range, "x_range")
    check_flag(without_jacobian, "without_jacobian")
    dtype = bijector.dtype
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
    fig = axes[0].figure
    base = torch.distributions.Normal(0.0, 1.0)
    z = torch.linspace(*z_range, 801, dtype=dtype).unsqueeze(-1)
    x, log_det = bijector(z)
    p_z = base.log_prob(z[:, 0]).exp()
    axes[0].fill_between(z[:, 0], p_z, color=BASE_COLOR, alpha=0.3)
    axes[0].plot(z[:, 0], p_z, color=BASE_COLOR)
    axes[0].set(title="base density $p_z(z)$", xlabel="z")
    axes[1].plot(z[:, 0], x[:, 0], color="k")
    axes[1].set(title="the map $x = f(z)$", xlabel="z", ylabel="x")
    generator = torch.Generator().manual_seed(seed)
    pushed = bijector(torch.randn(n, 1, generator=generator, dtype=dtype))[0][:, 0]
    if x_range is None:
        x_range = tuple(np.quantile(pushed.numpy(), [0.002, 0.998]))
    axes[2].hist(pushed.numpy(), bins=80, range=x_range, density=True, color=TARGET_COLOR, alpha=0.35,
                 label=f"histogram of {n:,} samples")
    axes[2].plot(x[:, 0], (base.log_prob(z[:, 0]) - log_det).exp(), color=MODEL_COLOR, lw=2,
                 label=r"$p_z(z)\,/\,|f'(z)|$")
    if without_jacobian:
        axes[2].plot(x[:, 0], p_z, color="k", ls="--", label=r"$p_z(f^{-1}(x))$: no Jacobian")
    axes[2].set(title="pushed density $p_x(x)$", xlabel="x", xlim=x_range)
    axes[2].set_ylim(0, 1.35 * axes[2].get_ylim()[1])  # headroom: the legend sits above the curves
    axes[2].legend(fontsize=8, loc="upper right")
    return fig


@torch.no_grad()
def plot_warped_grid(transform, bounds, ax=None, lines=13, resolution=200, color="k", title=None):
    """The image of a regular grid of lines under ``transform`` ((n, 2) -> (n, 2) tensor, or a
    bijector/flow returning (x, log_det)): how a map bends and stretches the plane. The lines are
    in the dtype of ``transform`` if it is a flow or bijector (else the default dtype)."""
    check_callable(transform, "transform", "a map of points (n, 2) to points (n, 2), e.g. a flow or a lambda")
    check_bounds(bounds, 2)
    _check_ax(ax)
    check_int(lines, "lines", low=2)
    check_int(resolution, "resolution", low=2)
    _check_color(color)
    _check_title(title)
    (x0, x1), (y0, y1) = bounds
    t = torch.linspace(0, 1, resolution, dtype=_dtype_of(transform))
    grid_lines = []
    for s in torch.linspace(0, 1, lines):
        grid_lines += [torch.stack([x0 + (x1 - x0) * t, torch.full_like(t, y0 + (y1 - y0) * s)], -1),
                       torch.stack([torch.full_like(t, x0 + (x1 - x0) * s), y0 + (y1 - y0) * t], -1)]
    points = torch.cat(grid_lines)
    out = transform(points)  # every line in one call (one ODE solve for a continuous flow), checked before drawing
    out = out[0] if isinstance(out, tuple) else out
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(points.shape):
        raise ValueError(f"transform must map points (n, 2) to points (n, 2) (or return (points, log_det)), "
                         f"got {type_name(out)} of shape {tuple(getattr(out, 'shape', ()))} for {len(points)} points")
    images = out.detach().split(resolution)
    fig, ax = _axes(ax)
    for out in images:
        ax.plot(out[:, 0], out[:, 1], color=color, lw=0.7, alpha=0.8)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return fig


def class_style(k):
    """Colour and marker of class ``k`` (0, 1, ...): ``dict(color=..., marker=...)`` for ``ax.plot``
    or ``ax.scatter``. Okabe-Ito colour k mod 8 and the k-th of ten markers: ten classes (the digits)
    are told apart by colour, and the two pairs that share a colour by shape."""
    k = check_int(k, "k", low=0)
    return {"color": CATEGORICAL[k % len(CATEGORICAL)], "marker": CLASS_MARKERS[k % len(CLASS_MARKERS)]}


def position_colors(points):
    """Colours that encode where each 2D point starts (angle -> hue, radius -> lightness), so
    points can be followed through the layers of a flow."""
    points = check_batch(points, 2, "points", owner="colouring").detach().numpy()
    angle = (np.arctan2(points[:, 1], points[:, 0]) + math.pi) / (2 * math.pi)
    radius = np.linalg.norm(points, axis=1)
    colors = plt.get_cmap("hsv")(angle)
    colors[:, :3] *= (0.45 + 0.55 * np.exp(-radius / 2))[:, None] ** 0.5
    return colors


def plot_layers(flow, points, inverse=False, max_panels=9, size=3, bounds=None):
    """Scatter the points after each layer of ``flow`` (``Flow.trace``), coloured by where they
    started: base -> data by default, data -> base with ``inverse=True``."""
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be a nflesson Flow, got {type_name(flow)}")
    if flow.dim != 2:
        raise ValueError(f"plot_layers draws the plane: it needs a flow of dim 2, got dim = {flow.dim}")
    check_flag(inverse, "inverse")
    check_int(max_panels, "max_panels", low=1)
    check_positive(size, "size")
    if bounds is not None:
        check_bounds(bounds, 2)
    flow.checked(points, "points")
    if len(points) == 0:
        raise ValueError("points is empty: plot_layers needs at least one point to follow through the layers")
    trace = flow.trace(points, inverse=inverse)
    keep = np.unique(np.linspace(0, len(trace) - 1, min(max_panels, len(trace))).round().astype(int))
    fig, axes = plt.subplots(1, len(keep), figsize=(2.4 * len(keep), 2.6), layout="constrained", squeeze=False)
    colors = position_colors(points)
    for ax, k in zip(axes[0], keep):
        ax.scatter(trace[k][:, 0], trace[k][:, 1], s=size, c=colors, linewidths=0)
        if k == 0:
            label = "data" if inverse else "base"
        else:  # the inverse passes the layers last first: name each by its place in the flow
            label = f"after inverse of layer {len(trace) - k}" if inverse else f"after layer {k}"
        ax.set_title(label, fontsize=9)
        ax.set(xticks=[], yticks=[])
        if bounds is not None:
            ax.set(xlim=bounds[0], ylim=bounds[1])
    return fig


def plot_loss(losses, ax=None, reference=None, reference_label=ENTROPY_LABEL, title="training loss"):
    """The loss per step, with an optional horizontal ``reference`` line labelled
    ``reference_label`` in the legend (default: the target's entropy H(p), the lowest expected
    NLL any model can reach: E_p[-log q] = H(p) + KL(p || q) >= H(p))."""
    losses = _check_losses(losses)
    _check_ax(ax)
    if reference is not None:
        check_number(reference, "reference")
    if not isinstance(reference_label, str):
        raise TypeError(f"reference_label must be a string, got {type_name(reference_label)}")
    _check_title(title)
    fig, ax = _axes(ax)
    ax.plot(np.arange(len(losses)), losses, color=MODEL_COLOR, lw=1)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
        ax.legend(fontsize=8)
    ax.set(xlabel="step", ylabel="loss", title=title)
    return fig


def _check_losses(losses, name="losses"):
    """``losses`` if it is a sequence (or 1D tensor) of numbers, else TypeError or ValueError."""
    if isinstance(losses, torch.Tensor):
        if losses.dim() != 1 or losses.is_complex() or losses.dtype == torch.bool:
            raise ValueError(f"{name} must be a 1D tensor or a list of numbers (one per step), got a tensor of "
                             f"{losses.dtype} and shape {tuple(losses.shape)}")
        return losses.detach().tolist()
    if isinstance(losses, (str, bytes)) or not hasattr(losses, "__len__") or not hasattr(losses, "__iter__"):
        raise TypeError(f"{name} must be a list of numbers (one per step, e.g. history.losses), got "
                        f"{type_name(losses)}")
    for k, value in enumerate(losses):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must hold numbers, but {name}[{k}] is {type_name(value)} {value!r}")
    return losses


def reference_line(reference, label=None, objective=None):
    """(value, label) of a loss panel's reference line, or None. ``reference`` is a number or a
    (value, label) pair; without a label, the objective's own: the target's entropy for maximum
    likelihood, -log Z for reverse KL. Any other objective (flow matching: a regression error,
    not a likelihood, so no entropy applies) needs the label saying what the line is."""
    if reference is None:
        return None
    if label is not None and not isinstance(label, str):
        raise TypeError(f"reference_label must be a string or None, got {type_name(label)}")
    if isinstance(reference, (tuple, list)):
        if len(reference) != 2 or not isinstance(reference[1], str):
            raise ValueError(f"reference must be a number or a (value, label) pair, got {reference!r}")
        reference, label = reference if label is None else (reference[0], label)
    value = check_number(reference, "reference")
    if label is None:
        label = DEFAULT_REFERENCE_LABELS.get(objective)
    if label is None:
        raise ValueError(f"a reference line on a {objective or 'training'} loss needs a label saying what it is "
                         "(reference_label=..., or reference=(value, label)): only maximum likelihood and reverse "
                         "KL have a default (the target's entropy, -log Z)")
    return value, label


def loss_limits(losses, reference=None, squash=5.0):
    """(bottom, top, clipped) of a loss axis. It holds every finite loss from the first step
    (and the reference) unless the early losses lie so far above the rest that the rest would
    fill less than 1/``squash`` of the height; then the top holds the last 90% of the run and
    ``clipped`` = (how many steps lie above it, the highest of them), for the panel to say."""
    losses = _check_losses(losses)
    if reference is not None:
        check_number(reference, "reference")
    check_number(squash, "squash", low=1)
    finite = [v for v in losses if math.isfinite(v)] or [0.0]
    extra = [reference] if reference is not None else []
    low, high = min(finite + extra), max(finite + extra)
    late_high = max(finite[len(finite) // 10:] + extra)
    clipped = None
    if high - low > squash * max(late_high - low, 1e-12):
        high = late_high
        above = [v for v in finite if v > high + 0.05 * (high - low)]
        clipped = (len(above), max(above)) if above else None
    pad = 0.06 * max(high - low, 1e-3)
    return low - pad, high + pad, clipped


class _BlittedFigure:
    """A figure drawn in full once, then updated frame by frame by redrawing only the artists
    that ``show(frame)`` changes over a saved background (blitting): fast enough for widgets
    and GIFs. Subclasses build ``self.fig``, then call ``_freeze(first_frame)``."""

    def _freeze(self, frame):
        fig = self.fig
        changing = self.show(frame)
        fig.set_layout_engine("constrained")
        fig.canvas.draw()  # lay out with every artist in place (titles included)
        fig.set_layout_engine("none")  # then freeze the layout: later frames only move data
        for artist in changing:  # the background is everything that never changes
            artist.set_visible(False)
        fig.canvas.draw()
        self.background = fig.canvas.copy_from_bbox(fig.bbox)
        for artist in changing:
            artist.set_visible(True)

    def render(self, frame):
        """Frame ``frame`` as a PIL image, redrawing only what changes."""
        canvas = self.fig.canvas
        changed = self.show(frame)
        canvas.restore_region(self.background)
        for artist in changed:
            (artist.axes or self.fig).draw_artist(artist)
        return canvas_image(canvas)


def canvas_image(canvas):
    """What an Agg canvas holds now, as a PIL image (no redraw)."""
    if not hasattr(canvas, "buffer_rgba") or not hasattr(canvas, "get_width_height"):
        raise TypeError(f"canvas must be a matplotlib Agg canvas (fig.canvas of an agg_figure), got {type_name(canvas)}")
    return Image.frombuffer("RGBA", canvas.get_width_height(), bytes(canvas.buffer_rgba()), "raw", "RGBA", 0, 1)


def figure_image(fig):
    """A matplotlib figure drawn in full, as a PIL image: a frame for ``write_gif``."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure (e.g. agg_figure(figsize)), got {type_name(fig)}")
    if not hasattr(fig.canvas, "buffer_rgba"):
        raise ValueError("fig must be drawn by Agg (made by agg_figure, or by pyplot with the Agg backend)")
    fig.canvas.draw()
    return canvas_image(fig.canvas)


def write_gif(images, path, fps=8, first=None, last=1500):
    """Write PIL images as an endlessly looping GIF (as matplotlib's PillowWriter does), each
    shown 1/fps s, the first for ``first`` ms (default: like the others) and the last for
    ``last`` ms, so the animation rests on its result. Returns ``path``. ``images`` is a
    non-empty list of PIL images, ``path`` a file name ending in .gif, ``fps`` in (0, 100]."""
    if isinstance(images, Image.Image) or not isinstance(images, (list, tuple)):
        raise TypeError(f"images must be a list of PIL images (e.g. from figure_image), got {type_name(images)}")
    if not images:
        raise ValueError("images is empty: a GIF needs at least one frame")
    for k, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise TypeError(f"images must hold PIL images (e.g. from figure_image), but images[{k}] is "
                            f"{type_name(image)}")
    _check_gif_path(path)
    _check_fps(fps)
    if first is not None:
        check_positive(first, "first")
    check_positive(last, "last")
    durations = [1000 // fps] * len(images)
    durations[0] = first or durations[0]
    durations[-1] = last
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def context_label(context):
    """How the pictures name a context c: 'c = 1.5' for one number, 'class 3' for a one-hot
    class label, 'c = (0.1, 2, 0.5)' for a few numbers ('...' after the fourth). ``context``
    is a (k,) tensor or a number."""
    values = torch.as_tensor(context, dtype=torch.float64).detach().reshape(-1).tolist()
    if len(values) > 1 and all(v in (0.0, 1.0) for v in values) and sum(values) == 1:
        return f"class {values.index(1.0)}"
    if len(values) == 1:
        return f"c = {values[0]:.3g}"
    shown = ", ".join(f"{v:.3g}" for v in values[:4]) + (", ..." if len(values) > 4 else "")
    return f"c = ({shown})"


def figure_context(flow, context, name="context"):
    """The (k,) tensor, in the flow's dtype, of the one context ``context`` that a figure of a
    conditional ``flow`` draws q(x | c) for: a number (k = 1), a (k,) tensor (or a 0-d tensor for
    k = 1) or a sequence of k numbers; None for an unconditional flow, which takes none. Else
    TypeError or ValueError saying what is needed."""
    k = flow.context_size
    if not k:
        if context is not None:
            raise ValueError(f"this flow is unconditional (it reads no context): leave {name} None, got "
                             f"{type_name(context)}")
        return None
    example = f"{name}=1.5" if k == 1 else f"{name}=torch.tensor([...]) of {k} numbers"
    if context is None:
        raise ValueError(f"this flow is conditional on a context of width {k}: pass {name}=c, the context whose "
                         f"q(x | c) to draw, e.g. {example}")
    if isinstance(context, np.ndarray):
        context = torch.from_numpy(np.array(context))
    if isinstance(context, torch.Tensor):
        if context.dtype == torch.bool or context.is_complex():
            raise TypeError(f"{name} must be a tensor of real numbers, got a tensor of {context.dtype}")
        if context.dim() > 1:
            raise ValueError(f"{name} must be one context, a tensor of shape ({k},), got shape "
                             f"{tuple(context.shape)}")
        values = context.detach().reshape(-1).to("cpu", torch.float64)
    elif isinstance(context, numbers.Real) and not isinstance(context, bool):
        values = torch.tensor([float(context)], dtype=torch.float64)
    elif isinstance(context, (list, tuple)):
        values = torch.tensor([check_number(v, f"{name}[{j}]") for j, v in enumerate(context)], dtype=torch.float64)
    else:
        raise TypeError(f"{name} must be one context of width {k}: {'a number or ' if k == 1 else ''}a tensor of "
                        f"shape ({k},), got {type_name(context)}")
    if len(values) != k:
        raise ValueError(f"{name} must be one context of width {k} ({k} number{'s' if k > 1 else ''}), got "
                         f"{len(values)}")
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} must hold finite numbers, got {values.tolist()}")
    return values.to(flow.dtype or torch.get_default_dtype())


class SnapshotFigure(_BlittedFigure):
    """One frame of a training run, drawn once and then updated in place by ``show(index)``:
    cheap enough to scrub through in a widget or to render as GIF frames. Three panels: target
    vs model samples, model density, loss so far. ``reference`` draws a horizontal, labelled
    line on the loss panel: a number or a (value, label) pair, labelled ``reference_label`` if
    given, else by the objective (``reference_line``: the target's entropy for maximum
    likelihood, H(X | C) for a conditional one; -log Z for reverse KL; other objectives need a
    label). The loss axis holds the whole run from the first step, or says how many early steps
    lie above it (``loss_limits``). ``SnapshotFigure(history, ...)`` makes the figure of the history's case:
    ``SnapshotFigure1D`` or ``SnapshotFigure2D``, which draw the model's panels.

    A conditional run (``history.context``, m contexts) gets one column per context, titled by
    it (``context_label``: 'c = 1.5', 'class 3'): in 2D its target and model samples given c
    above and the model density q(x | c) below (each on the colour scale of its trained
    model); in 1D the density q(x | c) over the target's histogram above and the model's
    samples below; and the loss on the right, two rows high. ``figsize`` None: (10, 3.2)
    inches, or (2.7 m + 3.3, 5.6) for a conditional run. ``panels`` holds each column's
    artists (one entry for an unconditional run)."""

    def __new__(cls, history, *args, **kwargs):
        _check_history(history)
        if cls is SnapshotFigure:
            cls = SnapshotFigure1D if len(history.bounds) == 1 else SnapshotFigure2D
        return super().__new__(cls)

    def __init__(self, history, reference=None, figsize=None, dpi=72, reference_label=None):
        _check_history(history)
        self.history = history
        self.contexts = getattr(history, "context", None)
        if self.contexts is not None and reference_label is None and history.objective == "maximum likelihood" and \
                not isinstance(reference, (tuple, list)):
            reference_label = CONDITIONAL_ENTROPY_LABEL  # a conditional model's floor is H(X | C)
        reference = reference_line(reference, reference_label, history.objective)
        if figsize is not None:
            _check_figsize(figsize)
        _check_dpi(dpi)
        if self.contexts is None:
            self.fig = fig = agg_figure(figsize or (10, 3.2), dpi)
            self.axes = fig.subplots(1, 3)
            columns, ax_loss = [(self.axes[0], self.axes[1])], self.axes[2]
        else:
            m = len(self.contexts)
            self.fig = fig = agg_figure(figsize or (2.7 * m + 3.3, 5.6), dpi)
            grid = fig.add_gridspec(2, m + 1, width_ratios=[1.0] * m + [1.3])
            self.axes = np.array([[fig.add_subplot(grid[row, j]) for j in range(m)] for row in range(2)])
            columns, ax_loss = list(zip(*self.axes)), fig.add_subplot(grid[:, m])
        self.ax_loss = ax_loss
        self.panels = [self._draw_model(top, bottom, j) for j, (top, bottom) in enumerate(columns)]
        bottom, self.top, clipped = loss_limits(history.losses, reference and reference[0])
        ax_loss.set(xlim=(0, max(len(history.losses), 1)), xlabel="step", ylabel="loss", ylim=(bottom, self.top))
        if clipped:
            ax_loss.text(0.02, 0.97, f"↑ {clipped[0]} early steps above (up to {clipped[1]:.3g})",
                         transform=ax_loss.transAxes, ha="left", va="top", fontsize=8, color="0.3")
        self.reference_line = None
        if reference is not None:  # redrawn over the loss curve in every frame, so a noisy curve cannot hide it
            self.reference_line = ax_loss.axhline(reference[0], color="k", ls="--", lw=1, label=reference[1])
            ax_loss.legend(fontsize=9 if self.contexts is None else 8, loc="center right" if clipped else "upper right")
        (self.loss_line,) = ax_loss.plot([], [], color=MODEL_COLOR, lw=1)
        (self.marker,) = ax_loss.plot([], [], "o", color="k")
        self._freeze(0)

    def _of(self, value, j):
        """Context j's part of a snapshot's or the history's ``value`` (all of it, unconditional)."""
        return value if self.contexts is None or value is None else value[j]

    def _titles(self, j, unconditional, given):
        """The titles of column j: ``unconditional`` ones, or ``given`` formatted with its context's label."""
        if self.contexts is None:
            return unconditional
        label = context_label(self.contexts[j])
        return tuple(text.format(c=label) for text in given)

    def show(self, index):
        """Update the panels to snapshot ``index``; returns the changed artists."""
        count = len(self.history.snapshots)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"the snapshot index must be an integer from 0 to {count - 1}, got {type_name(index)}")
        if not 0 <= index < count:
            raise ValueError(f"the snapshot index must be an integer from 0 to {count - 1}, got {index}")
        snap = self.history.snapshots[index]
        changed = []
        for j, panel in enumerate(self.panels):
            changed += self._show_model(panel, self._of(snap.samples, j), self._of(snap.log_density, j))
        losses = self.history.losses[: snap.step]
        self.loss_line.set_data(np.arange(len(losses)), losses)
        self.marker.set_data([snap.step], [min(snap.loss, self.top)])
        self.marker.set_marker("^" if snap.loss > self.top else "o")
        self.ax_loss.set_title(f"step {snap.step}   loss {snap.loss:.3f}")
        changed += [self.loss_line] + ([self.reference_line] if self.reference_line is not None else [])
        return changed + [self.marker, self.ax_loss.title]


class SnapshotFigure1D(SnapshotFigure):
    """A 1D run (see ``SnapshotFigure``): the model density over a histogram of the target's
    samples, then a histogram of the model's samples, on one height scale for all frames (per
    context for a conditional run)."""

    def _draw_model(self, ax_density, ax_samples, j):
        history = self.history
        lo, hi = history.bounds[0]
        self.bins = np.linspace(lo, hi, 61)
        target = self._of(history.target_samples, j)
        first = history.snapshots[0]
        density_title, samples_title = self._titles(j, ("density", "model samples"),
                                                    ("q(x | {c})", "model samples, {c}"))
        if target is not None:
            ax_density.hist(target[:, 0].numpy(), bins=self.bins, density=True, color=TARGET_COLOR, alpha=0.35,
                            label="data")
        (density_line,) = ax_density.plot(history.grid[0], self._of(first.log_density, j).exp(), color=MODEL_COLOR,
                                          lw=2, label="model")
        top = 1.3 * self._max_density(j)
        ax_density.set(xlim=(lo, hi), ylim=(0, top), title=density_title)
        if j == 0:
            ax_density.legend(fontsize=8, loc="upper right")
        bars = ax_samples.bar(self.bins[:-1], np.zeros(60), width=np.diff(self.bins), align="edge", color=MODEL_COLOR,
                              alpha=0.6)
        ax_samples.set(xlim=(lo, hi), ylim=(0, top), title=samples_title)
        return {"density_line": density_line, "bars": bars}

    @property
    def density_line(self):
        """The model's density curve (of the first context for a conditional run)."""
        return self.panels[0]["density_line"]

    @property
    def bars(self):
        """The bars of the model's samples' histogram (of the first context for a conditional run)."""
        return self.panels[0]["bars"]

    def _max_density(self, j=0):
        """The highest density of the run (of context j): of any snapshot, or of the target's histogram."""
        peaks = [self._of(s.log_density, j).exp().max().item() for s in self.history.snapshots]
        target = self._of(self.history.target_samples, j)
        if target is not None and len(target):
            counts, _ = np.histogram(target[:, 0].numpy(), bins=self.bins, density=True)
            peaks.append(counts.max())
        return max(peaks)

    def _show_model(self, panel, samples, log_density):
        panel["density_line"].set_ydata(log_density.exp().numpy())
        counts, _ = np.histogram(samples[:, 0].numpy(), bins=self.bins, density=True)
        for bar, height in zip(panel["bars"], counts):
            bar.set_height(height)
        return [panel["density_line"], *panel["bars"]]


class SnapshotFigure2D(SnapshotFigure):
    """A 2D run (see ``SnapshotFigure``): model samples over the target's, then the model
    density on the history's grid, on the colour scale of the trained model for all frames
    (per context for a conditional run)."""

    def _draw_model(self, ax_samples, ax_density, j):
        history = self.history
        first = history.snapshots[0]
        target = self._of(history.target_samples, j)
        samples_title, density_title = self._titles(j, ("samples", "model density"),
                                                    ("samples given {c}", "model q(x | {c})"))
        if target is not None:
            plot_samples(target, ax_samples, color=TARGET_COLOR, label="target", alpha=0.35)
        samples = self._of(first.samples, j)
        scatter = ax_samples.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.6, color=MODEL_COLOR, label="model",
                                     linewidths=0)
        ax_samples.set(xlim=history.bounds[0], ylim=history.bounds[1], title=samples_title)
        if j == 0:
            ax_samples.legend(fontsize=8, loc="upper right", markerscale=3)
        (x0, x1), (y0, y1) = history.bounds
        image = ax_density.imshow(self._of(first.log_density, j).exp().numpy(), origin="lower",
                                  extent=(x0, x1, y0, y1), cmap=DENSITY_CMAP, aspect="auto", interpolation="bilinear",
                                  vmin=0, vmax=self._of(history.snapshots[-1].log_density, j).exp().max().item())
        ax_density.set_title(density_title)
        if self.contexts is not None:
            ax_samples.set(xticks=[], yticks=[])
            ax_density.set(xticks=[], yticks=[])
        return {"scatter": scatter, "image": image}

    @property
    def scatter(self):
        """The model's samples (of the first context for a conditional run)."""
        return self.panels[0]["scatter"]

    @property
    def image(self):
        """The model's density image (of the first context for a conditional run)."""
        return self.panels[0]["image"]

    def _show_model(self, panel, samples, log_density):
        panel["scatter"].set_offsets(samples.numpy())
        panel["image"].set_data(log_density.exp().numpy())
        return [panel["scatter"], panel["image"]]


def _check_frames(frames):
    """``frames`` as an int if it is an integer (Python's or numpy's) >= 2, else TypeError or ValueError."""
    if isinstance(frames, bool) or not isinstance(frames, numbers.Integral):
        raise TypeError(f"frames must be an integer >= 2 (the first frame is the base, the last the data), "
                        f"got {type_name(frames)} {frames!r}")
    if frames < 2:
        raise ValueError(f"frames must be an integer >= 2 (the first frame is the base, the last the data), "
                         f"got {int(frames)}")
    return int(frames)


def layer_times(layers, frames):
    """``frames`` layer times from 0 (the base) to ``layers`` (the data), evenly spread. With at
    least 4 frames per layer they are eased within each layer by the smoothstep
    s -> 3s^2 - 2s^3, so that the points slow down at every layer's output and each layer's
    move can be told apart; with fewer, easing would only make the motion jerky."""
    layers = check_positive_int(layers, "layers")
    frames = _check_frames(frames)
    t = np.linspace(0.0, layers, frames)
    if frames < 4 * layers:
        return t
    k = np.minimum(np.floor(t), layers - 1)
    s = t - k
    return k + s * s * (3 - 2 * s)


def _between(stages, t):
    """Stage values (a sequence indexed by layer) at layer time t: stage k at t = k, and on the
    straight segment from stage k to stage k + 1 in between."""
    k = min(int(math.floor(t)), len(stages) - 2)
    s = t - k
    return (1 - s) * stages[k] + s * stages[k + 1]


class TransformationFigure(_BlittedFigure):
    """The learned transformation of a trained 1D or 2D ``flow`` at any layer time t in [0, K]
    (K = its number of layers): t = k shows the points after layer k, and between two layers
    each point moves on the straight segment from one layer's output to the next. A flow that
    is one ContinuousFlow goes along its ODE time instead: t in [0, 1] (``layers`` is 1), the
    points computed at the ``time_steps`` + 1 times 0, 1/K, ..., 1 (K = ``time_steps``) by the
    flow's solver, on straight segments in between; ``solver`` (e.g. ``{"method": "rk4",
    "steps": 8}``) changes its settings for the figure's solves (the density panel solves the
    ODE once per time step on a 90 x 90 grid: a fixed-step solver keeps that quick). The
    stages come from ``Flow.stages``.

    2D (``TransformationFigure2D``): ``n_points`` base samples, coloured by where they start
    in the base, and a grid of lines drawn on the base, carried to the data. ``density=True``
    adds the density after each layer (each scaled to its own peak; blended between layers),
    and ``data`` (an (n, 2) tensor) adds the way back: those points carried to the base
    through the inverses. 1D (``TransformationFigure1D``): the density of the points at time
    t, exact along the interpolated map x_t(z) (p_t(x_t(z)) = p_base(z) / |dx_t/dz|), over a
    strip of the points themselves with the images of the base's quantile lines z = -2, -1.5,
    ..., 2. ``TransformationFigure(flow, ...)`` makes the figure of the flow's dimension.
    ``show(t)``/``render(t)`` move everything to time t; the base noise is drawn with
    ``seed``, the global random state is left alone.

    A conditional flow q(x | c) is drawn for one ``context`` c (a number for a context of width
    1, else a (k,) tensor; ``figure_context``): the same base carried into q(x | c) by the layers
    (or the ODE) with that context, the density panel that of q(x | c), the way back with that
    context too; the titles name c (``context_label``). A conditional flow without a context
    is refused, and so is a context for an unconditional flow.
    """

    density_panel = True  # whether density=True adds a panel

    def __new__(cls, flow, *args, **kwargs):
        if cls is TransformationFigure:
            cls = TransformationFigure1D if getattr(flow, "dim", None) == 1 else TransformationFigure2D
        return super().__new__(cls)

    def __init__(self, flow, n_points=800, seed=0, bounds=None, density=False, data=None, lines=13,
                 figsize=None, dpi=72, time_steps=16, solver=None, context=None):
        _check_transformation_arguments(flow, n_points, seed, bounds, density, data, lines, figsize, dpi, time_steps)
        self.context = figure_context(flow, context)
        self.given = "" if self.context is None else f" given {context_label(self.context)}"
        self.continuous = continuous_of(flow) is not None
        self.stages = flow.stages(time_steps, solver)
        self.layers = self.stages.end
        if self.layers == 0:
            raise ValueError("this flow has no layers: there is no transformation to draw")
        dtype = flow.base_loc.dtype
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(seed)
            base = flow.base.sample((n_points,)).to(dtype)
            jitter = torch.rand(n_points, dtype=dtype)
        self.flow = flow
        self.points_trace = [p.numpy() for p in self._points(base)]
        self.back_trace = None
        if data is not None:
            self.back_trace = [p.numpy() for p in self._points(data, inverse=True)]
        panels = 1 + (density and self.density_panel) + (data is not None)
        self.fig = fig = agg_figure(figsize or (3.5 * panels + 0.7, 3.9), dpi)
        axes = list(np.atleast_1d(fig.subplots(1, panels)))
        self.title = fig.suptitle("", fontsize=11)
        self.density_image = self.back_points = None
        self._draw_flow(axes, base, jitter, bounds, density, lines)
        if data is not None:
            self._draw_way_back(axes[-1], data, axes[0].get_ylim())
        self._freeze(0.0)

    def _points(self, x, inverse=False, log_det=False):
        """The stages' points of ``x`` (``points`` of ``Flow.stages``) for the figure's context."""
        if self.context is None:
            return self.stages.points(x, inverse=inverse, log_det=log_det)
        return self.stages.points(x, inverse=inverse, log_det=log_det, context=self.context)

    def _back_from(self, k, x):
        """Stage k carried back to the base, (points, log|det|) (``back_from`` of the stages), for
        the figure's context."""
        return self.stages.back_from(k, x, context=self.context)

    def _draw_way_back(self, ax, data, ylim):
        """The data on its way back to the base, in a panel of its own."""
        start = self._back_offsets(self.back_trace[0])
        self.back_points = ax.scatter(start[:, 0], start[:, 1], s=4, c=self._data_colors(data)[: len(start)],
                                      linewidths=0)
        ax.set(xlim=self.bounds[0], ylim=ylim, title=f"the way back{self.given}: data → base")

    def _quantile_bounds(self, margin=0.12):
        """Bounds that hold the middle 99% of the points at every stage, padded by ``margin``."""
        traces = self.points_trace + (self.back_trace or [])
        everything = np.concatenate(traces)
        lo, hi = np.quantile(everything, 0.005, axis=0), np.quantile(everything, 0.995, axis=0)
        pad = (hi - lo) * margin
        return tuple((float(a - p), float(b + p)) for a, b, p in zip(lo, hi, pad))

    def times(self, frames):
        """``frames`` times from the base to the data for an animation (``layer_times``)."""
        return layer_times(self.layers, frames)

    def show(self, t):
        """Move everything to layer time ``t`` (0 = the base, K = the data; for a continuous
        flow the ODE time, 1 = the data); returns the changed artists."""
        t = check_number(t, "t")
        if not -1e-6 <= t <= self.layers * (1 + 1e-6):
            raise ValueError(f"t must be a time from 0 (the base) to {self.layers} (the data), got {t!r}")
        t = float(np.clip(t, 0.0, self.layers))
        stage = t * self.stages.count / self.layers  # where t falls among the stages
        changed = [self.points, self.grid_lines, self.title] + self._show_flow(stage)
        if self.back_points is not None:
            self.back_points.set_offsets(self._back_offsets(_between(self.back_trace, stage)))
            changed.append(self.back_points)
        self.title.set_text(f"{self.stages.name(t)}   (t = {t:.2f})")
        return changed


def _check_transformation_arguments(flow, n_points, seed, bounds, density, data, lines, figsize, dpi, time_steps):
    """The checks of TransformationFigure, made before anything is computed or drawn."""
    if not isinstance(flow, Flow):
        raise TypeError(f"the learned transformation is drawn for a nflesson.Flow, got {type_name(flow)}")
    if flow.dim not in (1, 2):
        raise ValueError(f"the learned transformation is drawn for flows of dim 1 or 2, got dim = {flow.dim}")
    check_positive_int(n_points, "n_points")
    check_seed(seed)
    if bounds is not None:
        check_bounds(bounds, flow.dim)
    check_flag(density, "density")
    if data is not None:
        check_batch(data, flow.dim, "data", owner="flow", dtype=flow.base_loc.dtype)
        if len(data) < 2:
            raise ValueError(f"data must hold at least 2 points to carry back to the base, got {len(data)}")
        check_finite_rows(data, "data")
    check_positive_int(lines, "lines")
    if figsize is not None:
        _check_figsize(figsize)
    _check_dpi(dpi)
    check_positive_int(time_steps, "time_steps")


class TransformationFigure1D(TransformationFigure):
    """A 1D flow's transformation (see ``TransformationFigure``): the exact density of the
    points along the map, over a strip of the points and the images of the base's quantiles."""

    density_panel = False  # the density is always drawn, over the points

    @torch.no_grad()
    def _draw_flow(self, axes, base, jitter, bounds, density, lines):
        flow = self.flow
        with torch.random.fork_rng():
            torch.manual_seed(1)
            many = flow.base.sample((20_000,))[:, 0].to(base.dtype)
        z = torch.quantile(many, torch.linspace(0.0005, 0.9995, 1200, dtype=base.dtype)).unsqueeze(-1)
        self.log_p_base = flow.base.log_prob(z).numpy()
        self.curve_x, self.curve_slopes = [], []
        for x, log_det in zip(*self._points(z, log_det=True)):
            sign = np.sign(np.gradient(x[:, 0].numpy())) if self.curve_x else 1.0  # which way the map runs
            self.curve_x.append(x[:, 0].numpy())
            self.curve_slopes.append(sign * log_det.exp().numpy())
        self.bounds = bounds or self._quantile_bounds()
        peak = max(float(np.max(np.exp(self.log_p_base) / np.abs(s))) for s in self.curve_slopes)
        top = 1.2 * peak
        self.strip = (-0.06 - 0.2 * jitter.numpy()) * top
        quantiles = torch.linspace(-2, 2, 9, dtype=base.dtype).unsqueeze(-1)
        self.ticks_trace = [q[:, 0].numpy() for q in self._points(quantiles)]
        ax = axes[0]
        (self.density_line,) = ax.plot([], [], color=MODEL_COLOR, lw=2)
        self.grid_lines = LineCollection([], colors="0.4", linewidths=0.8)
        ax.add_collection(self.grid_lines)
        self.points = ax.scatter(self.points_trace[0][:, 0], self.strip, s=4, c=_line_colors(base), linewidths=0)
        ax.axhline(0, color="0.7", lw=0.8)
        title = "base → data: the density on a line" if self.context is None else \
            f"base → q(x | {context_label(self.context)}) on a line"
        ax.set(xlim=self.bounds[0], ylim=(-0.3 * top, top), title=title,
               xlabel="x", yticks=[])

    def _draw_way_back(self, ax, data, ylim):
        self.back_strip = np.resize(self.strip, len(data))  # a strip of its own, as tall as the other panel's
        super()._draw_way_back(ax, data, ylim)
        ax.set_yticks([])

    def _data_colors(self, data):
        return _line_colors(data)

    def _back_offsets(self, back):
        return np.c_[back[:, 0], self.back_strip]

    def _show_flow(self, stage):
        x = _between(self.points_trace, stage)[:, 0]
        self.points.set_offsets(np.c_[x, self.strip])
        curve_x = _between(self.curve_x, stage)
        density = np.exp(self.log_p_base) / np.maximum(np.abs(_between(self.curve_slopes, stage)), 1e-300)
        self.density_line.set_data(curve_x, density)
        bottom = self.strip.min()
        self.grid_lines.set_segments([[(v, bottom), (v, 0.0)] for v in _between(self.ticks_trace, stage)])
        return [self.density_line]


class TransformationFigure2D(TransformationFigure):
    """A 2D flow's transformation (see ``TransformationFigure``): points coloured by where
    they start and a grid of lines, carried along the stages; optionally the density."""

    @torch.no_grad()
    def _draw_flow(self, axes, base, jitter, bounds, density, lines):
        ticks = torch.linspace(-3, 3, lines, dtype=base.dtype)
        along = torch.linspace(-3, 3, 60, dtype=base.dtype)
        horizontal = torch.stack(torch.broadcast_tensors(along[None, :], ticks[:, None]), -1)
        grid = torch.cat([horizontal, horizontal.flip(-1)])  # (2 lines, 60, 2): rows, then columns
        self.lines_trace = [p.numpy().reshape(grid.shape) for p in self._points(grid.reshape(-1, 2))]
        self.bounds = bounds or self._quantile_bounds()
        ax = axes[0]
        self.grid_lines = LineCollection(self.lines_trace[0], colors="0.55", linewidths=0.5, alpha=0.7)
        ax.add_collection(self.grid_lines)
        start = self.points_trace[0]
        self.points = ax.scatter(start[:, 0], start[:, 1], s=4, c=position_colors(base), linewidths=0)
        title = "base → data" if self.context is None else f"base → q(x | {context_label(self.context)})"
        ax.set(xlim=self.bounds[0], ylim=self.bounds[1], title=title)
        if density:
            self.densities = self._densities(axes[1])

    def _densities(self, ax, size=90):
        """The density after each stage on a grid, each scaled to its own peak:
        p_k(x) = p_base(z) |det dz/dx| with z = x carried back from stage k to the base."""
        _, points = grid_points(self.bounds, size, dtype=self.flow.base_loc.dtype)
        stages = []
        for k in range(self.stages.count + 1):
            z, log_det = self._back_from(k, points)
            values = (self.flow.base.log_prob(z) + log_det).exp().reshape(size, size).numpy()
            stages.append(values / max(values.max(), 1e-300))
        (x0, x1), (y0, y1) = self.bounds
        self.density_image = ax.imshow(stages[0], origin="lower", extent=(x0, x1, y0, y1), cmap=DENSITY_CMAP,
                                       aspect="auto", interpolation="bilinear", vmin=0, vmax=1)
        ax.set(xlim=self.bounds[0], ylim=self.bounds[1], title=f"density{self.given} (scaled to its peak)")
        return stages

    def _data_colors(self, data):
        return position_colors((data - data.mean(0)) / data.std(0))

    def _back_offsets(self, back):
        return back

    def _show_flow(self, stage):
        self.points.set_offsets(_between(self.points_trace, stage))
        self.grid_lines.set_segments(_between(self.lines_trace, stage))
        if self.density_image is None:
            return []
        self.density_image.set_data(_between(self.densities, stage))
        return [self.density_image]


def _line_colors(points):
    """Colours for 1D points by their rank (blue: left, red: right), to follow them along a line."""
    ranks = points[:, 0].argsort().argsort().numpy() / max(len(points) - 1, 1)
    return plt.get_cmap("coolwarm")(ranks)


def save_transformation_gif(flow, path, frames=48, fps=12, **options):
    """Write the learned transformation of a trained 1D or 2D ``flow`` as a looping GIF:
    ``frames`` frames from the base (first frame) to the data (last frame, where it rests),
    layer by layer with eased in-between frames (``layer_times``); ``options`` go to
    ``TransformationFigure`` (n_points, seed, bounds, density=True, data=... for the way back,
    lines, figsize, dpi, time_steps, solver, and context=c, which a conditional flow needs: the
    base carried into q(x | c)). A continuous-time flow goes along its ODE time, eased at
    the start and the end. Returns ``path``."""
    _check_gif_path(path)
    frames = _check_frames(frames)
    _check_fps(fps)
    figure = TransformationFigure(flow, **options)
    images = [figure.render(t) for t in figure.times(frames)]
    return write_gif(images, path, fps, first=800, last=2500)


def plot_made(made, ax=None, title=None):
    """MADE's connectivity (lesson 6): units as dots in columns (inputs, hidden layers, outputs),
    a line for every connection its masks keep, and each unit's degree written next to it.
    Output i of every parameter group is drawn in the colour of input i. Returns the figure."""
    from .nets import MADE

    if not isinstance(made, MADE):
        raise TypeError(f"made must be a nflesson MADE network (nf.MADE(dim, hidden=...)), got {type_name(made)}")
    _check_ax(ax)
    _check_title(title)
    fig, ax = _axes(ax, width=6.0, height=4.0)
    masks = [m.detach().cpu() for m in made.masks()]
    sizes = [masks[0].shape[1]] + [m.shape[0] for m in masks]
    dim = made.dim
    in_degrees = made.degrees.cpu()

    def positions(n, column):
        heights = np.linspace(1.0, 0.0, n) if n > 1 else np.array([0.5])
        return np.full(n, float(column)), heights

    columns = [positions(n, k) for k, n in enumerate(sizes)]
    for k, mask in enumerate(masks):
        (x0, y0), (x1, y1) = columns[k], columns[k + 1]
        for out, inp in mask.nonzero().tolist():
            colour = class_style(out % dim)["color"] if k == len(masks) - 1 else "0.6"
            ax.plot([x0[inp], x1[out]], [y0[inp], y1[out]], color=colour, lw=0.8, alpha=0.8, zorder=1)
    # degrees: inputs from the order, hidden units from what they may see, outputs like their input
    degrees = [in_degrees]
    for mask in masks[:-1]:
        seen = mask.float() * degrees[-1].float()[None, :]
        degrees.append(seen.max(1).values.long())
    degrees.append(in_degrees.repeat(made.params_per_dim))
    names = ["inputs"] + [f"hidden {k + 1}" for k in range(len(masks) - 1)] + ["outputs"]
    for k, ((xs, ys), degree) in enumerate(zip(columns, degrees)):
        last = k == len(columns) - 1
        for unit, (x, y) in enumerate(zip(xs, ys)):
            colour = class_style(unit % dim)["color"] if k in (0, len(columns) - 1) else "0.3"
            ax.scatter([x], [y], s=120, color=colour, zorder=2, edgecolors="k", linewidths=0.5)
            if k == 0:
                label = f"x{unit + 1}"
            elif last:
                label = f"{'ts'[unit // dim] if made.params_per_dim == 2 else 'p'}{unit % dim + 1}"
            else:
                label = str(int(degree[unit]))
            offset = 0.12 if last else (-0.12 if k == 0 else 0.0)
            ax.annotate(label, (x + offset, y + (0.0 if offset else 0.045)), ha="center", va="center",
                        fontsize=8)
        ax.text(xs[0], -0.1, names[k], ha="center", fontsize=9)
    ax.set(xlim=(-0.4, len(columns) - 0.6), ylim=(-0.18, 1.1), xticks=[], yticks=[])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    return fig
