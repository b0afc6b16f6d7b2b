"""What a training run leaves for the pictures: a ``History`` of losses and snapshots, and
``SnapshotRecorder``, which the training loop (nflesson.train) calls at its snapshot steps and
which alone knows of grids: a snapshot holds samples from fixed base noise (so that frames move
smoothly), the density on a grid for 1D and 2D flows, and a copy of the parameters."""

import contextlib
from dataclasses import dataclass, field

import torch

from .checks import check_positive


@dataclass
class Snapshot:
    """The model at one step: its loss, samples from fixed base noise, its log-density on the
    history's grid (None without a grid), and a copy of its parameters."""

    step: int
    loss: float
    samples: torch.Tensor
    log_density: torch.Tensor
    state: dict


@dataclass
class History:
    """What a training run recorded. ``losses[k]`` is the loss at step k. ``bounds`` is the box of
    the pictures, one (low, high) per dimension; ``grid`` the list of 1D tick tensors (one per
    dimension) on which snapshot densities are evaluated, for 1D and 2D flows only (None above:
    a grid would not fit in memory); ``target_samples`` holds samples of the target to draw
    next to the model's (None if it has none). ``interrupted`` is True for a run stopped before
    its last step (its losses and snapshots are those recorded until then); ``notes`` keeps the
    warnings the run gave (a loss that blew up, a stop). For a conditional flow, ``context`` is the
    (k,) context its snapshots are drawn for, and ``target_samples`` are samples of the target
    given that context (None for an unconditional flow)."""

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

    def save_gif(self, path, fps=8, dpi=72, reference=None, figsize=(10, 3.2)):
        """Write the run as an animated GIF, one frame per snapshot: samples against the target,
        the model density, the loss (``reference``: a labelled horizontal line on it, a number
        or a (value, label) pair, see ``viz.SnapshotFigure``). Returns ``path``."""
        from .viz import SnapshotFigure, write_gif

        check_positive(fps, "fps")
        if not self.snapshots:
            raise ValueError("this History has no snapshots to draw")
        frame = SnapshotFigure(self, reference, figsize=figsize, dpi=dpi)
        return write_gif([frame.render(k) for k in range(len(self.snapshots))], path, fps)


class SnapshotRecorder:
    """Records a ``History`` of ``flow``'s training: ``loss(value)`` at every step and
    ``snapshot(step, loss)`` at the snapshot steps, each taken inside ``scope()`` (e.g. a
    cheaper ODE solver for the pictures) and, for a conditional flow, for one ``context`` (k,).
    ``start()`` draws the fixed base noise of the snapshots' ``n_samples`` samples from the
    global random state (the loop seeds it first)."""

    def __init__(self, flow, objective, bounds, target_samples, grid_size, n_samples, scope=contextlib.nullcontext,
                 context=None):
        self.flow, self.n_samples, self.scope, self.context = flow, n_samples, scope, context
        dtype = flow.dtype
        ticks, self.grid_points, self.grid_shape = None, None, None
        if len(bounds) <= 2:
            ticks = [torch.linspace(lo, hi, grid_size, dtype=dtype) for lo, hi in bounds]
            self.grid_points = torch.stack([t.flatten() for t in torch.meshgrid(*ticks, indexing="xy")], -1)
            self.grid_shape = (grid_size,) * len(bounds)
        self.history = History(objective, tuple(map(tuple, bounds)), ticks, target_samples, context)
        self.noise = None

    def start(self):
        self.noise = self.flow.base.sample((self.n_samples,))

    def loss(self, value):
        self.history.losses.append(value)

    @torch.no_grad()
    def snapshot(self, step, loss):
        with self.scope():
            samples = self.flow(self.noise, self.context)[0]
            log_density = None
            if self.grid_points is not None:
                log_density = self.flow.log_prob(self.grid_points, self.context).reshape(self.grid_shape)
        state = {k: v.detach().clone() for k, v in self.flow.state_dict().items()}
        self.history.snapshots.append(Snapshot(step, loss, samples, log_density, state))
