"""Figures for the lessons. Every function draws on the axes it is given (or new ones) and
returns the figure, so lessons can compose panels. Colours are shared across lessons:
target/data in TARGET_COLOR, the model in MODEL_COLOR, densities in DENSITY_CMAP."""

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

TARGET_COLOR = "#4c72b0"
MODEL_COLOR = "#dd8452"
BASE_COLOR = "#55a868"
DENSITY_CMAP = "viridis"


def _axes(ax, ncols=1, width=4.0, height=3.6):
    if ax is not None:
        return (ax.figure, ax)
    fig, ax = plt.subplots(1, ncols, figsize=(width * ncols, height), layout="constrained")
    return fig, ax


def agg_figure(figsize, dpi=72):
    """A figure outside pyplot's list of open figures (nothing to close, never shown twice),
    drawn by Agg; notebooks display it with ``display(fig)``."""
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def grid_points(bounds, size=200, dtype=None):
    """The ticks along each axis and the (size^dim, dim) points of a regular grid over bounds,
    x varying fastest (so values reshape to (size, size) images with rows = y)."""
    ticks = [torch.linspace(lo, hi, size, dtype=dtype) for lo, hi in bounds]
    mesh = torch.meshgrid(*ticks, indexing="xy")
    return ticks, torch.stack([m.flatten() for m in mesh], -1)


@torch.no_grad()
def density_on_grid(log_prob, bounds, size=200):
    """exp(log_prob) on a size x size grid over 2D bounds, as a (size, size) array (rows = y)."""
    _, points = grid_points(bounds, size)
    return log_prob(points).exp().reshape(size, size).numpy()


def plot_density(log_prob, bounds, ax=None, size=200, title=None, cmap=DENSITY_CMAP, vmax=None):
    """Heatmap of a 2D density; ``log_prob`` is a callable (e.g. ``flow.log_prob``) or a
    (size, size) tensor of log-densities on the grid over ``bounds`` (e.g. a snapshot's).
    Give several panels the same ``vmax`` to compare their heights."""
    fig, ax = _axes(ax)
    values = log_prob.exp().numpy() if isinstance(log_prob, torch.Tensor) else density_on_grid(log_prob, bounds, size)
    (x0, x1), (y0, y1) = bounds
    ax.imshow(values, origin="lower", extent=(x0, x1, y0, y1), cmap=cmap, aspect="auto", interpolation="bilinear",
              vmin=0, vmax=vmax)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), title=title)
    return fig


def plot_samples(samples, ax=None, bounds=None, color=MODEL_COLOR, label=None, size=3, alpha=0.5, title=None):
    """Scatter plot of (n, 2) samples."""
    fig, ax = _axes(ax)
    samples = samples.detach()
    ax.scatter(samples[:, 0], samples[:, 1], s=size, alpha=alpha, color=color, label=label, linewidths=0)
    if bounds is not None:
        ax.set(xlim=bounds[0], ylim=bounds[1])
    if title:
        ax.set_title(title)
    return fig


@torch.no_grad()
def plot_1d_map(bijector, z_range=(-4.0, 4.0), n=20_000, seed=0, axes=None, x_range=None, without_jacobian=False):
    """The change of variables in 1D, in three panels: the base density p_z = N(0, 1); the map
    x = f(z); the pushed density p_x(x) = p_z(z) / |f'(z)| (from the log-det) over a histogram
    of n pushed samples. ``without_jacobian`` adds the wrong curve p_z(f^{-1}(x))."""
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
    fig = axes[0].figure
    base = torch.distributions.Normal(0.0, 1.0)
    z = torch.linspace(*z_range, 801).unsqueeze(-1)
    x, log_det = bijector(z)
    p_z = base.log_prob(z[:, 0]).exp()
    axes[0].fill_between(z[:, 0], p_z, color=BASE_COLOR, alpha=0.3)
    axes[0].plot(z[:, 0], p_z, color=BASE_COLOR)
    axes[0].set(title="base density $p_z(z)$", xlabel="z")
    axes[1].plot(z[:, 0], x[:, 0], color="k")
    axes[1].set(title="the map $x = f(z)$", xlabel="z", ylabel="x")
    generator = torch.Generator().manual_seed(seed)
    pushed = bijector(torch.randn(n, 1, generator=generator))[0][:, 0]
    if x_range is None:
        x_range = tuple(np.quantile(pushed.numpy(), [0.002, 0.998]))
    axes[2].hist(pushed.numpy(), bins=80, range=x_range, density=True, color=TARGET_COLOR, alpha=0.35,
                 label=f"histogram of {n:,} samples")
    axes[2].plot(x[:, 0], (base.log_prob(z[:, 0]) - log_det).exp(), color=MODEL_COLOR, lw=2,
                 label=r"$p_z(z)\,/\,|f'(z)|$")
    if without_jacobian:
        axes[2].plot(x[:, 0], p_z, color="k", ls="--", label=r"$p_z(f^{-1}(x))$: no Jacobian")
    axes[2].set(title="pushed density $p_x(x)$", xlabel="x", xlim=x_range)
    axes[2].legend(fontsize=8, loc="upper right")
    return fig


@torch.no_grad()
def plot_warped_grid(transform, bounds, ax=None, lines=13, resolution=200, color="k", title=None):
    """The image of a regular grid of lines under ``transform`` ((n, 2) -> (n, 2) tensor, or a
    bijector/flow returning (x, log_det)): how a map bends and stretches the plane."""
    fig, ax = _axes(ax)
    (x0, x1), (y0, y1) = bounds
    t = torch.linspace(0, 1, resolution)
    for s in torch.linspace(0, 1, lines):
        for line in (torch.stack([x0 + (x1 - x0) * t, torch.full_like(t, y0 + (y1 - y0) * s)], -1),
                     torch.stack([torch.full_like(t, x0 + (x1 - x0) * s), y0 + (y1 - y0) * t], -1)):
            out = transform(line)
            out = out[0] if isinstance(out, tuple) else out
            ax.plot(out[:, 0], out[:, 1], color=color, lw=0.7, alpha=0.8)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return fig


def position_colors(points):
    """Colours that encode where each 2D point starts (angle -> hue, radius -> lightness), so
    points can be followed through the layers of a flow."""
    points = points.detach().numpy()
    angle = (np.arctan2(points[:, 1], points[:, 0]) + math.pi) / (2 * math.pi)
    radius = np.linalg.norm(points, axis=1)
    colors = plt.get_cmap("hsv")(angle)
    colors[:, :3] *= (0.45 + 0.55 * np.exp(-radius / 2))[:, None] ** 0.5
    return colors


def plot_layers(flow, points, inverse=False, max_panels=9, size=3, bounds=None):
    """Scatter the points after each layer of ``flow`` (``Flow.trace``), coloured by where they
    started: base -> data by default, data -> base with ``inverse=True``."""
    trace = flow.trace(points, inverse=inverse)
    keep = np.unique(np.linspace(0, len(trace) - 1, min(max_panels, len(trace))).round().astype(int))
    fig, axes = plt.subplots(1, len(keep), figsize=(2.4 * len(keep), 2.6), layout="constrained", squeeze=False)
    colors = position_colors(points)
    for ax, k in zip(axes[0], keep):
        ax.scatter(trace[k][:, 0], trace[k][:, 1], s=size, c=colors, linewidths=0)
        label = ("data" if inverse else "base") if k == 0 else f"after layer {k}"
        ax.set_title(label, fontsize=9)
        ax.set(xticks=[], yticks=[])
        if bounds is not None:
            ax.set(xlim=bounds[0], ylim=bounds[1])
    return fig


def plot_loss(losses, ax=None, reference=None, reference_label="entropy of the target", title="training loss"):
    """The loss per step, with an optional horizontal reference (e.g. the target's entropy,
    the lowest NLL any model can reach)."""
    fig, ax = _axes(ax)
    ax.plot(np.arange(len(losses)), losses, color=MODEL_COLOR, lw=1)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
        ax.legend(fontsize=8)
    ax.set(xlabel="step", ylabel="loss", title=title)
    return fig


class SnapshotFigure:
    """One frame of a training run in three panels (target vs model samples, model density,
    loss so far), drawn once and then updated in place by ``show(index)``: cheap enough to
    scrub through in a widget or to render as GIF frames. ``reference`` draws a horizontal line
    on the loss panel: the target's entropy for maximum likelihood, -log Z for reverse KL (the
    lowest loss any model can reach)."""

    def __init__(self, history, reference=None, figsize=(10, 3.2), dpi=72):
        self.history = history
        self.fig = fig = agg_figure(figsize, dpi)
        self.axes = fig.subplots(1, 3)
        first = history.snapshots[0]
        one_d = len(history.bounds) == 1
        ax_samples, ax_density, ax_loss = self.axes
        if one_d:
            lo, hi = history.bounds[0]
            self.bins = np.linspace(lo, hi, 61)
            if history.data is not None:
                ax_samples.hist(history.data[:, 0].numpy(), bins=self.bins, density=True, color=TARGET_COLOR,
                                alpha=0.35, label="data")
            (self.density_line,) = ax_samples.plot(history.grid[0], first.log_density.exp(), color=MODEL_COLOR,
                                                   lw=2, label="model")
            ax_samples.set(xlim=(lo, hi), ylim=(0, 1.3 * self._max_1d_density()), title="density")
            ax_samples.legend(fontsize=8, loc="upper right")
            self.bars = ax_density.bar(self.bins[:-1], np.zeros(60), width=np.diff(self.bins), align="edge",
                                       color=MODEL_COLOR, alpha=0.6)
            ax_density.set(xlim=(lo, hi), ylim=(0, 1.3 * self._max_1d_density()), title="model samples")
        else:
            if history.data is not None:
                plot_samples(history.data, ax_samples, color=TARGET_COLOR, label="target", alpha=0.35)
            self.scatter = ax_samples.scatter(first.samples[:, 0], first.samples[:, 1], s=3, alpha=0.6,
                                              color=MODEL_COLOR, label="model", linewidths=0)
            ax_samples.set(xlim=history.bounds[0], ylim=history.bounds[1], title="samples")
            ax_samples.legend(fontsize=8, loc="upper right", markerscale=3)
            (x0, x1), (y0, y1) = history.bounds
            # one colour scale for all frames: that of the trained model
            self.image = ax_density.imshow(first.log_density.exp().numpy(), origin="lower", extent=(x0, x1, y0, y1),
                                           cmap=DENSITY_CMAP, aspect="auto", interpolation="bilinear", vmin=0,
                                           vmax=history.snapshots[-1].log_density.exp().max().item())
            ax_density.set_title("model density")
        # the first steps' losses can be far above the rest: the panel shows the last 90% of
        # the run in full, and a loss above the top is marked by a triangle at the edge
        finite = [v for v in history.losses if math.isfinite(v)] or [0.0]
        low = min(finite + ([reference] if reference is not None else []))
        self.top = max(finite[len(finite) // 10:]) + 0.1
        ax_loss.set(xlim=(0, max(len(history.losses), 1)), xlabel="step", ylabel="loss",
                    ylim=(low - 0.1 * abs(low) - 0.1, self.top))
        if reference is not None:
            label = "entropy of the target" if history.objective == "maximum likelihood" else "-log Z: the loss at KL = 0"
            ax_loss.axhline(reference, color="k", ls="--", lw=1, label=label)
            ax_loss.legend(fontsize=8, loc="upper right")
        (self.loss_line,) = ax_loss.plot([], [], color=MODEL_COLOR, lw=1)
        (self.marker,) = ax_loss.plot([], [], "o", color="k")
        fig.set_layout_engine("constrained")
        changing = self.show(0)
        for artist in changing:  # the background is everything that never changes
            artist.set_visible(False)
        fig.canvas.draw()
        fig.set_layout_engine("none")  # freeze the layout: later frames only move data
        self.background = fig.canvas.copy_from_bbox(fig.bbox)
        for artist in changing:
            artist.set_visible(True)

    def _max_1d_density(self):
        peaks = [s.log_density.exp().max().item() for s in self.history.snapshots]
        if self.history.data is not None:
            counts, _ = np.histogram(self.history.data[:, 0].numpy(), bins=self.bins, density=True)
            peaks.append(counts.max())
        return max(peaks)

    def show(self, index):
        """Update the panels to snapshot ``index``; returns the changed artists."""
        snap = self.history.snapshots[index]
        if len(self.history.bounds) == 1:
            self.density_line.set_ydata(snap.log_density.exp().numpy())
            counts, _ = np.histogram(snap.samples[:, 0].numpy(), bins=self.bins, density=True)
            for bar, height in zip(self.bars, counts):
                bar.set_height(height)
            changed = [self.density_line, *self.bars]
        else:
            self.scatter.set_offsets(snap.samples.numpy())
            self.image.set_data(snap.log_density.exp().numpy())
            changed = [self.scatter, self.image]
        losses = self.history.losses[: snap.step]
        self.loss_line.set_data(np.arange(len(losses)), losses)
        self.marker.set_data([snap.step], [min(snap.loss, self.top)])
        self.marker.set_marker("^" if snap.loss > self.top else "o")
        self.axes[2].set_title(f"step {snap.step}   loss {snap.loss:.3f}")
        return changed + [self.loss_line, self.marker, self.axes[2].title]


    def render(self, index):
        """Snapshot ``index`` as a PIL image, redrawing only what changes (blitting)."""
        canvas = self.fig.canvas
        changed = self.show(index)
        canvas.restore_region(self.background)
        for artist in changed:
            artist.axes.draw_artist(artist)
        return Image.frombuffer("RGBA", canvas.get_width_height(), bytes(canvas.buffer_rgba()), "raw", "RGBA", 0, 1)


def plot_made(made, ax=None, title=None):
    """MADE's connectivity (lesson 6): units as dots in columns (inputs, hidden layers, outputs),
    a line for every connection its masks keep, and each unit's degree written next to it.
    Output i of every parameter group is drawn in the colour of input i. Returns the figure."""
    fig, ax = _axes(ax, width=6.0, height=4.0)
    masks = [m.detach().cpu() for m in made.masks()]
    sizes = [masks[0].shape[1]] + [m.shape[0] for m in masks]
    palette = plt.get_cmap("tab10")
    dim = made.dim
    in_degrees = made.degrees.cpu()

    def positions(n, column):
        heights = np.linspace(1.0, 0.0, n) if n > 1 else np.array([0.5])
        return np.full(n, float(column)), heights

    columns = [positions(n, k) for k, n in enumerate(sizes)]
    for k, mask in enumerate(masks):
        (x0, y0), (x1, y1) = columns[k], columns[k + 1]
        for out, inp in mask.nonzero().tolist():
            colour = palette(out % dim) if k == len(masks) - 1 else "0.6"
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
            colour = palette(unit % dim) if k in (0, len(columns) - 1) else "0.3"
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
