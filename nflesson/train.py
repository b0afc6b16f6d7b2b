"""Training loops: maximum likelihood on samples (``fit``) and reverse KL against an
unnormalised log-density (``fit_reverse_kl``), both recording a ``History`` for plots,
widgets and GIFs."""

import contextlib
from dataclasses import dataclass, field

import torch
from tqdm.auto import trange

from .checks import check_batch, check_positive, check_positive_int


class TrainingError(RuntimeError):
    """Raised when the loss stops being a finite number."""


@dataclass
class Snapshot:
    """The model at one step: its loss, samples from fixed base noise (so that frames move
    smoothly), its log-density on the history's grid (None without a grid), and a copy of its
    parameters."""

    step: int
    loss: float
    samples: torch.Tensor
    log_density: torch.Tensor
    state: dict


@dataclass
class History:
    """What a training run recorded. ``losses[k]`` is the loss at step k. ``grid`` is the list
    of 1D tick tensors (one per dimension) on which snapshot densities are evaluated, for 1D
    and 2D flows only (None above: a grid would not fit in memory); ``data`` holds reference
    samples of the target for plots (None if it has none)."""

    objective: str
    bounds: tuple
    grid: list
    data: torch.Tensor = None
    losses: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)

    def save_gif(self, path, fps=8, dpi=72, reference=None, figsize=(10, 3.2)):
        """Write the run as an animated GIF, one frame per snapshot: samples against the target,
        the model density, the loss (``reference``: a horizontal line on it, e.g. the target's
        entropy). Frames are blitted from one matplotlib figure (only the moving artists are
        redrawn) and written by Pillow, as matplotlib's PillowWriter does. Returns ``path``."""
        from .viz import SnapshotFigure, write_gif

        frame = SnapshotFigure(self, reference, figsize=figsize, dpi=dpi)
        return write_gif([frame.render(k) for k in range(len(self.snapshots))], path, fps)


def fit(flow, data, steps=1000, batch_size=256, lr=3e-3, snapshot_every=None, seed=0, progress=True,
        bounds=None, grid_size=80, n_samples=1000, transform=None):
    """Maximum likelihood: minimise NLL = -mean log p(x) over minibatches of ``data`` with Adam
    and a cosine learning-rate decay. ``data`` is a target (fresh samples every step) or a
    (n, dim) tensor (minibatches drawn from it). ``transform``, if given, is applied to every
    minibatch before scoring: ``transform=nflesson.dequantize`` adds fresh uniform noise at
    every step (``History.data`` keeps the untransformed points). Returns a History with a
    snapshot every ``snapshot_every`` steps (default: 50 frames over the run) and at the last
    step."""
    if hasattr(data, "sample"):
        target_dim, bounds = data.dim, bounds or data.bounds
        generator = torch.Generator().manual_seed(seed)
        reference = data.sample(n_samples, generator=generator)

        def batch():
            return data.sample(batch_size, generator=generator)
    else:
        data = check_batch(data, flow.dim, "data")
        target_dim, bounds = data.shape[1], bounds or _padded_bounds(data)
        generator = torch.Generator().manual_seed(seed)
        reference = data[:n_samples]

        def batch():
            if batch_size >= len(data):
                return data
            return data[torch.randint(len(data), (batch_size,), generator=generator)]

    if target_dim != flow.dim:
        raise ValueError(f"the data has dim = {target_dim} but the flow has dim = {flow.dim}")

    def loss():
        x = batch()
        return -flow.log_prob(x if transform is None else transform(x)).mean()

    return _train(flow, loss, "maximum likelihood", reference, steps, batch_size, lr, snapshot_every, seed,
                  progress, bounds, grid_size, n_samples)


def fit_reverse_kl(flow, log_density, steps=1000, batch_size=256, lr=3e-3, snapshot_every=None, seed=0,
                   progress=True, bounds=None, grid_size=80, n_samples=1000):
    """Variational inference: minimise mean(log q(x) - log p~(x)) over x ~ q (the flow, sampled
    with the reparametrisation trick), which is KL(q || p) - log Z for p = p~ / Z.
    ``log_density`` is a callable or an object with ``log_prob`` (e.g. an energy from
    ``nflesson.data``); its ``bounds`` are used for the grid when it has them."""
    log_p = getattr(log_density, "log_prob", log_density)
    bounds = bounds or getattr(log_density, "bounds", None)
    if bounds is None:
        raise ValueError("pass bounds=((xmin, xmax), (ymin, ymax)) for the plotting grid")
    reference = None
    if hasattr(log_density, "sample"):
        reference = log_density.sample(n_samples, generator=torch.Generator().manual_seed(seed))

    def loss():
        x, log_q = flow.sample_and_log_prob(batch_size)
        return (log_q - log_p(x)).mean()

    return _train(flow, loss, "reverse KL", reference, steps, batch_size, lr, snapshot_every, seed,
                  progress, bounds, grid_size, n_samples)


def _train(flow, loss_fn, objective, reference, steps, batch_size, lr, snapshot_every, seed, progress, bounds,
           grid_size, n_samples):
    check_positive_int(steps, "steps")
    check_positive_int(batch_size, "batch_size")
    snapshot_every = check_positive_int(snapshot_every or max(1, steps // 50), "snapshot_every")
    check_positive(lr, "lr")
    parameters = [p for p in flow.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("this flow has no trainable parameters")
    dtype = parameters[0].dtype
    ticks, grid_points = None, None
    if len(bounds) <= 2:
        ticks = [torch.linspace(lo, hi, grid_size, dtype=dtype) for lo, hi in bounds]
        grid_points = torch.stack([t.flatten() for t in torch.meshgrid(*ticks, indexing="xy")], -1)
    history = History(objective, tuple(map(tuple, bounds)), ticks, reference)
    optimizer, schedule = optimizer_and_schedule(parameters, lr, steps)
    flow.train()
    with torch.random.fork_rng(), _one_thread():
        torch.manual_seed(seed)
        noise = flow.base.sample((n_samples,))
        bar = trange(steps, disable=not progress, desc=objective)
        for step in bar:
            loss = loss_fn()
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss.item()} at step {step}: try a smaller lr (now {lr}), "
                    "fewer or smaller layers, or data scaled to about unit size"
                )
            if step % snapshot_every == 0:
                history.snapshots.append(_snapshot(flow, step, loss.item(), noise, grid_points, grid_size))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            history.losses.append(loss.item())
            if step % max(1, steps // 100) == 0:
                bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
        with torch.no_grad():
            final = loss_fn().item()
        history.snapshots.append(_snapshot(flow, steps, final, noise, grid_points, grid_size))
    return history


def optimizer_and_schedule(parameters, lr, steps):
    """Adam with a cosine decay of the learning rate from lr to lr / 100 over ``steps``.
    Adam runs its fused kernel, which updates all parameters in one call (on the course's
    flows a training step takes about 20% less time than with the default per-tensor loop),
    where this torch has one for the parameters' device (CPU since torch 2.4, CUDA before);
    elsewhere (e.g. MPS on some versions) Adam refuses it and the default loop runs."""
    parameters = list(parameters)
    try:
        optimizer = torch.optim.Adam(parameters, lr=lr, fused=True)
    except RuntimeError:  # "`fused=True` requires all the params to be ... of supported devices"
        optimizer = torch.optim.Adam(parameters, lr=lr)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 100)


@contextlib.contextmanager
def _one_thread():
    """Train on one CPU thread: the course's flows are small, and splitting their little
    matrix products across threads costs more than it saves (benchmarks/lessons.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def _snapshot(flow, step, loss, noise, grid_points, grid_size):
    samples = flow(noise)[0]
    log_density = None
    if grid_points is not None:
        log_density = flow.log_prob(grid_points).reshape((grid_size,) * grid_points.shape[1])
    state = {k: v.detach().clone() for k, v in flow.state_dict().items()}
    return Snapshot(step, loss, samples, log_density, state)


def _padded_bounds(data, margin=0.15):
    lo, hi = data.min(0).values, data.max(0).values
    pad = (hi - lo) * margin
    return tuple((float(a - p), float(b + p)) for a, b, p in zip(lo, hi, pad))
