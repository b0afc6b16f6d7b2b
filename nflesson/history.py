"""What a training run leaves for the pictures: a ``History`` of losses and snapshots, and
``SnapshotRecorder``, which the training loop (nflesson.train) calls at its snapshot steps and
which alone knows of grids: a snapshot holds samples from fixed base noise (so that frames move
smoothly), the density on a grid for 1D and 2D flows, and a copy of the parameters. A conditional
flow's snapshots hold the samples and the density for each of a few fixed contexts. Training
keeps only the copy of the parameters: the samples and the density are drawn from it when first
looked at, so a run whose pictures nobody draws spends nothing on them."""

import contextlib
import copy
from dataclasses import dataclass, field

import torch

from .checks import check_positive


class Snapshot:
    """The model at one step: its ``step``, ``loss``, a copy of its parameters (``state``), and for
    the pictures ``samples`` from fixed base noise (n, dim) and ``log_density``, its log-density on
    the history's grid (None without a grid). For a conditional flow both have a leading axis over
    the history's m contexts: ``samples`` (m, n, dim), the same base noise carried to q(x | c) for
    each c, and ``log_density`` (m, grid...) of q(x | c). Given ``draw`` (a function of ``state``
    returning (samples, log_density)), the two are drawn when first read, then kept."""

    def __init__(self, step, loss, samples=None, log_density=None, state=None, draw=None):
        self.step, self.loss, self.state = step, loss, state
        self._draw, self._pictures = draw, (samples, log_density)

    @property
    def samples(self):
        return self._drawn()[0]

    @property
    def log_density(self):
        return self._drawn()[1]

    def _drawn(self):
        if self._draw is not None:
            self._pictures, self._draw = self._draw(self.state), None
        return self._pictures

    def __repr__(self):
        return f"Snapshot(step {self.step}, loss {self.loss:.4g})"


@dataclass
class History:
    """What a training run recorded. ``losses[k]`` is the loss at step k. ``bounds`` is the box of
    the pictures, one (low, high) per dimension; ``grid`` the list of 1D tick tensors (one per
    dimension) on which snapshot densities are evaluated, for 1D and 2D flows only (None above:
    a grid would not fit in memory); ``target_samples`` holds samples of the target to draw
    next to the model's (None if it has none). ``interrupted`` is True for a run stopped before
    its last step (its losses and snapshots are those recorded until then); ``notes`` keeps the
    warnings the run gave (a loss that blew up, a stop).

    For a conditional flow q(x | c), ``context`` is the (m, k) tensor of the m contexts that the
    snapshots are drawn for, row j for everything at index j (None for an unconditional flow):
    for a conditional target, its ``snapshot_contexts`` when it has at most 4 of them, else their
    first, middle and last; for points with their contexts, up to 3 of the distinct context rows
    (the first, middle and last in sorted order; one-hot class contexts in class order). Then
    ``target_samples`` is a list of m tensors, row j's samples of the target given context j:
    drawn from a conditional target, or, for points, those with exactly that context (up to
    ``n_samples``) or, when fewer share it (continuous contexts, where each row has its own),
    the len(data) // (5 m) points whose contexts lie nearest to it."""

    objective: str
    bounds: tuple
    grid: list
    target_samples: torch.Tensor = None
    context: torch.Tensor = None
    losses: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)
    interrupted: bool = False
    notes: list = field(default_factory=list)

    def __repr__(self):
        """E.g. 'History(maximum likelihood, 1000 steps, loss 2.93 -> 1.42, 51 snapshots)'."""
        losses = f"loss {self.losses[0]:.4g} -> {self.losses[-1]:.4g}" if self.losses else "no loss yet"
        stopped = ", interrupted" if self.interrupted else ""
        notes = "".join(f"\n  note: {text}" for text in self.notes)
        return (f"History({self.objective}, {len(self.losses)} steps, {losses}, {len(self.snapshots)} "
                f"snapshots{stopped}){notes}")

    def save_gif(self, path, fps=8, dpi=72, reference=None, figsize=None):
        """Write the run as an animated GIF, one frame per snapshot: samples against the target,
        the model density, the loss (``reference``: a labelled horizontal line on it, a number
        or a (value, label) pair, see ``viz.SnapshotFigure``); for a conditional flow, samples
        and density for each of the history's contexts. ``figsize`` None: (10, 3.2) inches, or
        wider and two rows high for a conditional flow. Returns ``path``."""
        from .viz import SnapshotFigure, write_gif

        check_positive(fps, "fps")
        if not self.snapshots:
            raise ValueError("this History has no snapshots to draw")
        frame = SnapshotFigure(self, reference, figsize=figsize, dpi=dpi)
        return write_gif([frame.render(k) for k in range(len(self.snapshots))], path, fps)


class SnapshotRecorder:
    """Records a ``History`` of ``flow``'s training: ``loss(value)`` at every step and
    ``snapshot(step, loss)`` at the snapshot steps, which copies the parameters. A snapshot's
    pictures are drawn when first read, by a copy of the flow taken at ``start()`` with the
    snapshot's parameters, inside ``scope(that copy)`` (e.g. a cheaper ODE solver for the
    pictures) and, for a conditional flow, for each row of ``context`` (m, k) (a (k,) context:
    one row), in one batched pass. ``start()`` also draws the fixed base noise of the snapshots'
    ``n_samples`` samples from the global random state (the loop seeds it first); every context
    gets the same noise."""

    def __init__(self, flow, objective, bounds, target_samples, grid_size, n_samples,
                 scope=lambda flow: contextlib.nullcontext(), context=None):
        if context is not None and context.dim() == 1:
            context = context[None]
        self.flow, self.n_samples, self.scope, self.context = flow, n_samples, scope, context
        dtype = flow.dtype
        ticks, self.grid_points, self.grid_shape = None, None, None
        if len(bounds) <= 2:
            ticks = [torch.linspace(lo, hi, grid_size, dtype=dtype) for lo, hi in bounds]
            self.grid_points = torch.stack([t.flatten() for t in torch.meshgrid(*ticks, indexing="xy")], -1)
            self.grid_shape = (grid_size,) * len(bounds)
        self.history = History(objective, tuple(map(tuple, bounds)), ticks, target_samples, context)
        self.noise, self.painter = None, None
        if context is not None:  # every context's rows, one batch: the noise and the grid once per context
            m = len(context)
            self.context_of_noise = context.repeat_interleave(n_samples, 0)
            if self.grid_points is not None:
                self.context_of_grid = context.repeat_interleave(len(self.grid_points), 0)
                self.grid_points = self.grid_points.repeat(m, 1)
                self.grid_shape = (m,) + self.grid_shape

    def start(self):
        self.noise = self.flow.base.sample((self.n_samples,))
        self.painter = copy.deepcopy(self.flow).eval()  # the flow that draws the snapshots' pictures

    def loss(self, value):
        self.history.losses.append(value)

    def snapshot(self, step, loss):
        state = {k: v.detach().clone() for k, v in self.flow.state_dict().items()}
        self.history.snapshots.append(Snapshot(step, loss, state=state, draw=self.draw))

    @torch.no_grad()
    def draw(self, state):
        """(samples, log_density) of the flow with parameters ``state``."""
        flow = self.painter
        flow.load_state_dict(state)
        with self.scope(flow):
            if self.context is None:
                samples = flow._forward_points(self.noise)
                log_density = None
                if self.grid_points is not None:
                    log_density = flow.log_prob(self.grid_points).reshape(self.grid_shape)
            else:
                m = len(self.context)
                samples = flow._forward_points(self.noise.repeat(m, 1), self.context_of_noise)
                samples = samples.reshape(m, self.n_samples, -1)
                log_density = None
                if self.grid_points is not None:
                    log_density = flow.log_prob(self.grid_points, self.context_of_grid).reshape(self.grid_shape)
        return samples, log_density
