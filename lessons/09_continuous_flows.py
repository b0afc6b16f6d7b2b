# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 9 · Continuous-time flows and flow matching
#
# Every flow so far was a stack of layers, each built so that its Jacobian is triangular and
# its log-determinant a sum. A **continuous-time flow** drops the stack: it lets points drift
# along a vector field $v(x, t)$ for one unit of time, and the map from where they start to
# where they end is the flow. Any network can be the vector field; the ODE makes the map
# invertible, and the log-determinant becomes an integral of a trace. Such models used to be
# slow to train, until **flow matching** (Lipman et al. 2023; Liu et al. 2023) turned training
# into plain regression, without solving a single ODE. Flow matching is also one road into
# today's diffusion models. And because the course's targets have exact densities, we can do
# what flow-matching papers rarely can: measure how far the model is from the truth, in nats.
#
# **What you will learn**
# - why the flow map of an ODE is invertible and why its log-determinant is
#   $\int_0^1 \operatorname{div} v\,dt$ (the instantaneous change of variables), checked on a
#   field whose flow map is known;
# - how `nf.ContinuousFlow` solves the ODE (adaptive or fixed-step), computes the divergence
#   exactly or estimates it (Hutchinson), and what it costs in function evaluations;
# - the conditional flow matching loss on straight paths, and why it needs no ODE solver;
# - how a flow-matched model on moons and eight Gaussians compares with RealNVP, MAF and NSF,
#   in nats, and what it pays at evaluation time;
# - maximum likelihood through the ODE against flow matching, per step and per second;
# - the bridge to diffusion models: straight against curved paths, and how many solver steps
#   a good sample needs.
#
# **Prerequisites**: [Lesson 1 · The change of variables formula](01_change_of_variables.ipynb)
# (log-dets), [lesson 5](05_coupling_flows.ipynb) to [lesson 7](07_spline_flows.ipynb) for the
# models we compare with, and the idea of an ordinary differential equation $\dot x = v(x, t)$.
# **Time**: about 45 minutes.

# %%
# Opened alone (on Colab, say), a lesson first installs the course's package; elsewhere this does nothing.
import importlib.util, subprocess, sys  # noqa: E401
if importlib.util.find_spec("nflesson") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "nflesson @ git+https://github.com/OWNER/REPO"], check=True)

# %%
import math
import time

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image

import nflesson as nf
from nflesson import exercises, viz, widgets

torch.manual_seed(0)
torch.set_num_threads(1)  # small networks: one thread is faster than two that wait for each other
plt.rcParams["figure.dpi"] = 80
questions = exercises.lesson(9)

# %% [markdown]
# ## 1. From a stack of layers to a vector field
#
# Let a point move by $\frac{dx}{dt} = v(x(t), t)$ from $x(0) = z$ to $t = 1$, and call
# $f(z) = x(1)$. If $v$ is smooth, every starting point has exactly one path, and running the
# same ODE backwards from $x(1)$ returns $z$: $f$ is **invertible**, whatever network $v$ is.
# Stacking layers is the special case of a field that changes in jumps.
#
# How does the density change? Follow a small cloud of points: its volume grows at the rate
# $\operatorname{div} v = \sum_i \partial v_i / \partial x_i$ (the field's spreading), so its
# density falls at that rate. This is the **instantaneous change of variables** (Chen et al.
# 2018):
#
# $$\frac{d}{dt}\log p\big(x(t)\big) = -\operatorname{div} v\big(x(t), t\big), \qquad
# \log\Big|\det \frac{\partial f}{\partial z}\Big| = \int_0^1 \operatorname{div} v\big(x(t), t\big)\,dt .$$
#
# A $d \times d$ determinant has become the integral of a **trace**, which needs $d$ autograd
# passes (exact) or one (Hutchinson's estimate, below), and no triangular structure at all.
#
# **A field whose flow map we know.** The linear field $v(x) = A x$ has the flow map
# $f(z) = e^{A} z$ (the matrix exponential), and $\operatorname{div} v = \operatorname{tr} A$ at
# every point, so $\log|\det e^A| = \operatorname{tr} A$, Liouville's formula. With
# $A = \begin{pmatrix} a & -b \\ b & a \end{pmatrix}$ the map rotates by $b$ radians and scales
# by $e^a$. `nf.ContinuousFlow(dim, velocity=...)` takes any callable $v(x, t)$; here it solves
# the ODE with the adaptive Dormand-Prince method (`dopri5`) at tight tolerances, in float64:

# %%
a, b = -0.3, 1.2
A = torch.tensor([[a, -b], [b, a]], dtype=torch.float64)
spiral = nf.ContinuousFlow(2, velocity=lambda x, t: x @ A.T, rtol=1e-10, atol=1e-10)
z = torch.randn(500, 2, dtype=torch.float64)
with torch.no_grad():
    x, log_det = spiral(z)
    solves = spiral.nfe
    z_back, log_det_back = spiral.inverse(x)
exact = z @ torch.linalg.matrix_exp(A).T
print(f"x(1) against e^A z: max difference {(x - exact).abs().max():.1e}  ({solves} evaluations of v)")
print(f"log-det: {log_det[0].item():.12f} at every point, tr A = {2 * a}")
print(f"round trip: max |z - f^-1(f(z))| = {(z - z_back).abs().max():.1e}")
assert torch.allclose(x, exact, atol=1e-8) and torch.allclose(log_det, torch.full_like(log_det, 2 * a), atol=1e-8)
assert torch.allclose(z_back, z, atol=1e-8) and torch.allclose(log_det_back, -log_det, atol=1e-8)

# %% [markdown]
# The solver reproduces $e^A z$ and $\operatorname{tr} A = -0.6$ to eight digits and more.
# Left, the field and three paths; right, a grid carried by the flow map: it turns and shrinks,
# and each cell's area is multiplied by $e^{-0.6} = 0.55$ everywhere.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
g = torch.linspace(-3, 3, 15, dtype=torch.float64)
grid = torch.cartesian_prod(g, g)
arrows = grid @ A.T
axes[0].quiver(grid[:, 0], grid[:, 1], arrows[:, 0], arrows[:, 1], color="0.5", angles="xy")
starts = torch.tensor([[2.5, 0.0], [0.0, -2.0], [-1.5, 1.5]], dtype=torch.float64)
with torch.no_grad():
    paths = spiral.trajectory(starts, torch.linspace(0, 1, 50))
for k in range(3):
    axes[0].plot(paths[:, k, 0], paths[:, k, 1], color=viz.MODEL_COLOR, lw=2)
    axes[0].plot(*paths[0, k], "o", color=viz.BASE_COLOR)
    axes[0].plot(*paths[-1, k], "o", color=viz.MODEL_COLOR)
axes[0].set(title="v(x) = A x and three paths from t = 0 (green) to 1", aspect="equal")
viz.plot_warped_grid(lambda p: spiral(p.double()), ((-3, 3), (-3, 3)), axes[1], lines=11, resolution=60,
                     color="0.3", title="the grid [-3, 3]² carried to t = 1")
axes[1].set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
plt.show()

# %% [markdown]
# ## 2. Learning the field: flow matching
#
# With a network for $v$, `nf.ContinuousFlow(2)` is a normalizing flow like any other: its
# `log_prob` solves the ODE backwards from the data with the divergence alongside, and maximum
# likelihood could train it through the solver (FFJORD, Grathwohl et al. 2019; section 5). That
# is slow: every step solves an ODE and backpropagates through it.
#
# **Flow matching** trains $v$ without solving anything. Pair a base point $z \sim \mathcal
# N(0, I)$ with a data point $x$ and join them by the straight path $x_t = (1 - t)\,z + t\,x$,
# which moves with the constant velocity $x - z$. Averaged over all pairs that pass through a
# point, these velocities define a field whose ODE carries the base distribution exactly onto
# the data distribution. The conditional flow matching loss
#
# $$\mathcal L(v) = \mathbb E_{t \sim U[0,1],\ z \sim \mathcal N(0, I),\ x \sim p}\,
# \big\| v(x_t, t) - (x - z) \big\|^2$$
#
# is a least-squares regression whose minimiser is that averaged field (its gradient equals the
# gradient of the distance to the averaged field, since the two losses differ by a constant).
# One training step costs one pass of the network on a batch of $(x_t, t)$: no solver, no
# divergence. `nf.fit_flow_matching` trains it with Adam, like `nf.fit`. The velocity network
# (`nf.VelocityMLP`) is a three-layer SiLU network of $x$, $t$ and a few sines and cosines of
# $t$, about 9,000 parameters. 2,000 steps of 512 pairs on each of two targets:

# %%
cnf_runs = {}
for name in ["moons", "eight_gaussians"]:
    torch.manual_seed(0)
    model = nf.Flow([nf.ContinuousFlow(2)])
    start = time.perf_counter()
    history = nf.fit_flow_matching(model, nf.data.get(name), steps=2000, batch_size=512, snapshot_every=200,
                                   progress=False)
    cnf_runs[name] = {"flow": model, "history": history, "train_s": time.perf_counter() - start}
    print(f"{name:<16} {sum(p.numel() for p in model.parameters()):,} parameters, trained in "
          f"{cnf_runs[name]['train_s']:.1f} s; final flow matching loss {history.losses[-1]:.3f}")

# %% [markdown]
# The loss does not go to zero, and it should not: a point $x_t$ lies on many straight paths
# with different velocities, and the network can only learn their average. What matters is the
# likelihood of the result. We score 20,000 fresh test samples with the exact log-density: the
# ODE solved backwards by `dopri5` (tolerances $10^{-5}$) with the exact divergence. The
# number of function evaluations (NFE) tells what one scoring pass costs.

# %%
tests = {name: nf.data.get(name).sample(20_000, generator=torch.Generator().manual_seed(1)) for name in cnf_runs}
for name, run in cnf_runs.items():
    start = time.perf_counter()
    run["gap"] = nf.gap(run["flow"], nf.data.get(name), tests[name])
    run["eval_s"], run["nfe"] = time.perf_counter() - start, run["flow"].layers[0].nfe
    print(f"{name:<16} gap {run['gap']} with dopri5 (NFE {run['nfe']}, {run['eval_s']:.1f} s for 20,000 points)")
moons_flow = cnf_runs["moons"]["flow"]
with moons_flow.layers[0].solver(method="rk4", steps=10):
    start = time.perf_counter()
    moons_rk4 = nf.gap(moons_flow, nf.data.get("moons"), tests["moons"])
print(f"moons, scored with RK4 and 10 steps (NFE 40): {moons_rk4.nats:.4f} nats in {time.perf_counter() - start:.1f} s")
assert cnf_runs["moons"]["gap"].nats < 0.2 and cnf_runs["eight_gaussians"]["gap"].nats < 0.08
assert abs(cnf_runs["moons"]["gap"].nats - moons_rk4.nats) < 0.01

# %% [markdown]
# Flow matching ends about **0.10 nats** from the moons and **0.04** from the eight Gaussians.
# A fixed-step RK4 solver with 10 steps (40 evaluations) gives the moons' number to within a
# few thousandths, at half the cost of the adaptive solver.

# %% [markdown]
# ### Watch it train, and the learned transformation
#
# The snapshots show samples (from the same base points each time, solved with a cheap
# 4-step RK4) and the density as training goes; then the trained field carrying base samples
# and a grid to the eight Gaussians along its ODE time, and the data back to the base.

# %%
eight = cnf_runs["eight_gaussians"]
widgets.TrainingPlayer(eight["history"], reference=nf.data.get("eight_gaussians").entropy())

# %%
gif = eight["history"].save_gif("09_flow_matching_training.gif", reference=nf.data.get("eight_gaussians").entropy())
Image(filename=gif)

# %%
eight_data = tests["eight_gaussians"][:600]
gif = viz.save_transformation_gif(eight["flow"], "09_cnf_transformation.gif", data=eight_data,
                                  bounds=((-4, 4), (-4, 4)))
Image(filename=gif)

# %% [markdown]
# The same as a player: drag the **ODE time** from 0 (the base) to 1 (the data).

# %%
widgets.TransformationPlayer(eight["flow"], data=eight_data, bounds=((-4, 4), (-4, 4)))

# %% [markdown]
# ### The field itself
#
# A continuous-time flow *is* its vector field. Drag the time: the arrows show $v(x, t)$, the
# dots are 500 base samples carried to that time. Early on the field pushes outwards in eight
# directions; near $t = 1$ it pulls points into the blobs. (Needs a running kernel.)

# %%
moving = torch.randn(500, 2, generator=torch.Generator().manual_seed(3))
with torch.no_grad(), eight["flow"].layers[0].solver(method="rk4", steps=20):
    positions = eight["flow"].layers[0].trajectory(moving, torch.linspace(0, 1, 21))
velocity = eight["flow"].layers[0].velocity
arrow_grid = torch.cartesian_prod(torch.linspace(-3.5, 3.5, 15), torch.linspace(-3.5, 3.5, 15))


def draw_field(fig, t):
    ax = fig.subplots()
    with torch.no_grad():
        arrows = velocity(arrow_grid, torch.tensor(t))
    ax.quiver(arrow_grid[:, 0], arrow_grid[:, 1], arrows[:, 0], arrows[:, 1], color="0.55", angles="xy")
    points = positions[round(t * 20)]
    ax.scatter(points[:, 0], points[:, 1], s=5, c=viz.position_colors(moving))
    ax.set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal", title=f"v(x, t) and the points at t = {t:.2f}")


widgets.Explorer(draw_field, figsize=(5, 5),
                 t=ipywidgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="t",
                                          continuous_update=False))

# %% [markdown]
# ## 3. Against the discrete flows
#
# The same two targets with lessons 5 to 7's flows at lesson 6's training (4 layers,
# conditioners of 32 units, 500 steps of 256): RealNVP, MAF and NSF. The table gives the gap
# in nats, the training time, and the time to score 20,000 test points, where the
# continuous flow pays: every score is an ODE solve.

# %%
builders = {
    "RealNVP": lambda: nf.flows.realnvp(2, layers=4, hidden=32),
    "MAF": lambda: nf.flows.maf(2, layers=4, hidden=32),
    "NSF": lambda: nf.flows.nsf(2, layers=4, hidden=32, bins=8, bound=4.0),
}
table = {}
for target_name in cnf_runs:
    target = nf.data.get(target_name)
    for name, build in builders.items():
        torch.manual_seed(0)
        model = build()
        start = time.perf_counter()
        nf.fit(model, target, steps=500, batch_size=256, lr=1e-2, snapshot_every=500, progress=False)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        gap = nf.gap(model, target, tests[target_name])
        table[target_name, name] = (gap, train_s, time.perf_counter() - start)
    run = cnf_runs[target_name]
    table[target_name, "CNF (flow matching)"] = (run["gap"], run["train_s"], run["eval_s"])

print(f"{'target':<16}{'model':<21}{'gap (nats)':>18}{'training':>10}{'scoring 20,000':>16}")
for (target_name, name), (gap, train_s, eval_s) in table.items():
    print(f"{target_name:<16}{name:<21}{gap.nats:>10.3f} ± {gap.standard_error:.3f}{train_s:>9.1f}s{eval_s:>15.2f}s")
slowdown = min(table[t, "CNF (flow matching)"][2] / table[t, "NSF"][2] for t in cnf_runs)
print(f"\nscoring with the CNF takes at least {slowdown:.0f} times as long as with the NSF")
assert table["eight_gaussians", "CNF (flow matching)"][0].nats < table["eight_gaussians", "RealNVP"][0].nats / 3
assert table["moons", "CNF (flow matching)"][0].nats < table["moons", "MAF"][0].nats and slowdown > 5

# %% [markdown]
# On the eight Gaussians the flow-matched CNF is as close to the truth as the spline flow and
# far closer than RealNVP and MAF; on the moons it beats both affine flows but not the spline
# flow. The price is at evaluation: scoring 20,000 points takes a few seconds, many times longer
# than one pass through four layers, and sampling costs the same solve. Training, on the other
# hand, is cheap per step (no solver), though it needs more steps.

# %%
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), layout="constrained")
for row, target_name in enumerate(cnf_runs):
    target = nf.data.get(target_name)
    ax_true, ax_model = axes[2 * row], axes[2 * row + 1]
    top = float(viz.density_on_grid(target.log_prob, target.bounds, 100).max())
    viz.plot_density(target.log_prob, target.bounds, ax_true, size=100, vmax=top, title=f"{target_name}: truth")
    with torch.no_grad(), cnf_runs[target_name]["flow"].layers[0].solver(method="rk4", steps=10):
        viz.plot_density(cnf_runs[target_name]["flow"].log_prob, target.bounds, ax_model, size=100, vmax=top,
                         title=f"CNF: {cnf_runs[target_name]['gap'].nats:.3f} nats")
for ax in axes:
    ax.set(xticks=[], yticks=[])
plt.show()

# %% [markdown]
# ## 4. Hutchinson's estimator, for high dimensions
#
# The exact divergence needs one backward pass per dimension: fine for 2, ruinous for 3,072
# (a small colour image). **Hutchinson's estimator** replaces the trace by
# $\varepsilon^\top \frac{\partial v}{\partial x}\,\varepsilon$ with random $\varepsilon$
# of independent $\pm 1$ entries, whose expectation is the trace, at the cost of one
# vector-Jacobian product. Its log-densities are then **estimates**, unbiased but noisy:

# %%
cnf = cnf_runs["moons"]["flow"].layers[0]
estimates = []
with torch.no_grad(), cnf.solver(method="rk4", steps=10, divergence="hutchinson"):
    for seed in range(10):
        torch.manual_seed(seed)
        estimates.append(cnf_runs["moons"]["flow"].log_prob(tests["moons"][:2000]))
with torch.no_grad(), cnf.solver(method="rk4", steps=10):
    exact_log_q = cnf_runs["moons"]["flow"].log_prob(tests["moons"][:2000])
estimates = torch.stack(estimates)
print(f"exact mean log q on 2,000 points: {exact_log_q.mean():.4f};  10 Hutchinson estimates of it: "
      f"{estimates.mean(1).mean():.4f} on average, spread {estimates.mean(1).std():.4f}")
print(f"per point, one probe misses the exact log q by {(estimates[0] - exact_log_q).abs().mean():.3f} nats on average")
assert abs(estimates.mean() - exact_log_q.mean()) < 4 * estimates.mean(1).std() / math.sqrt(10) + 1e-3

# %% [markdown]
# On average the estimate agrees with the exact value; for a single point one probe misses by
# more than a nat. That noise is harmless in training (gradients average it out) but
# it must be labelled when a number is reported: every gap in this lesson uses the exact trace.
#
# ## 5. Maximum likelihood through the ODE
#
# Before flow matching, continuous flows were trained like every other flow here: maximum
# likelihood, with `log_prob` solving the ODE and its divergence backwards and autograd
# differentiating through every solver step (FFJORD). `nf.fit` does exactly that with a
# `ContinuousFlow`. We give it a cheap solver (RK4 with 4 steps) and 40 steps of 256 points on
# the moons, and give flow matching the same wall-clock time:

# %%
torch.manual_seed(0)
by_likelihood = nf.Flow([nf.ContinuousFlow(2, method="rk4", steps=4)])
start = time.perf_counter()
nf.fit(by_likelihood, nf.data.get("moons"), steps=40, batch_size=256, lr=1e-2, snapshot_every=40, progress=False)
likelihood_s = time.perf_counter() - start
fm_ms = 1000 * cnf_runs["moons"]["train_s"] / 2000
same_time_steps = int(1000 * likelihood_s / fm_ms)
with by_likelihood.layers[0].solver(method="rk4", steps=10):
    likelihood_gap = nf.gap(by_likelihood, nf.data.get("moons"), tests["moons"])
print(f"maximum likelihood through the ODE: {1000 * likelihood_s / 40:.0f} ms per step; 40 steps in {likelihood_s:.1f} s, "
      f"gap {likelihood_gap.nats:.3f} nats")
print(f"flow matching: {fm_ms:.1f} ms per step, so the same {likelihood_s:.1f} s buy about {same_time_steps:,} steps "
      f"(it reached {cnf_runs['moons']['gap'].nats:.3f} nats in 2,000)")
assert 1000 * likelihood_s / 40 > 10 * fm_ms and likelihood_gap.nats > cnf_runs["moons"]["gap"].nats

# %% [markdown]
# A maximum-likelihood step costs tens of flow-matching steps: it runs the network on every
# solver stage, computes the divergence with its second derivatives, and backpropagates through
# all of it. Forty steps leave the model far from the moons; with a few hundred it does learn
# them (try `steps=300` if you can wait), but at equal time flow matching is far ahead. That is
# why flow matching made continuous flows practical.

# %% [markdown]
# ## 6. The bridge to diffusion models
#
# Diffusion models can be read as continuous flows trained by a matching loss on different
# paths. Flow matching with straight paths uses $x_t = (1 - t) z + t x$; a variance-preserving
# diffusion corresponds to $x_t = \sin(\tfrac{\pi t}{2})\,x + \cos(\tfrac{\pi t}{2})\,z$ (up to
# its time schedule), a quarter circle from the noise to the data. Straighter paths are
# easier to integrate: fewer solver steps give good samples. Left, both kinds of conditional
# path for the same pairs $(z, x)$; right, the *learned* paths of our flow-matched model from
# the same base points.

# %%
pair_z = torch.randn(12, 2, generator=torch.Generator().manual_seed(4))
pair_x = tests["eight_gaussians"][:12].float()
t = torch.linspace(0, 1, 40)[:, None, None]
straight = (1 - t) * pair_z + t * pair_x
curved = torch.sin(math.pi * t / 2) * pair_x + torch.cos(math.pi * t / 2) * pair_z
with torch.no_grad():
    learned = eight["flow"].layers[0].trajectory(pair_z, torch.linspace(0, 1, 40))
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained")
for k in range(12):
    axes[0].plot(straight[:, k, 0], straight[:, k, 1], color=viz.MODEL_COLOR, lw=1.5)
    axes[0].plot(curved[:, k, 0], curved[:, k, 1], color=viz.BASE_COLOR, lw=1.5, ls="--")
    axes[1].plot(learned[:, k, 0], learned[:, k, 1], color=viz.MODEL_COLOR, lw=1.5)
axes[0].plot([], [], color=viz.MODEL_COLOR, label="flow matching: straight")
axes[0].plot([], [], color=viz.BASE_COLOR, ls="--", label="diffusion (VP): a quarter circle")
axes[0].legend(fontsize=8, loc="lower left")
axes[0].set(title="conditional paths from z to x", aspect="equal", xlim=(-4, 4), ylim=(-4, 4))
axes[1].set(title="the learned paths of the trained CNF", aspect="equal", xlim=(-4, 4), ylim=(-4, 4))
plt.show()


def detour(paths):
    """Path length over the straight-line distance from start to end, per path (1: straight)."""
    return paths.diff(dim=0).norm(dim=-1).sum(0) / (paths[-1] - paths[0]).norm(dim=-1)


print(f"length / straight-line distance, median over the 12 paths: straight {detour(straight).median():.3f}, "
      f"quarter circles {detour(curved).median():.3f}, learned {detour(learned).median():.3f}")
assert detour(straight).median() < 1.001 < detour(curved).median() and 1.0 < detour(learned).median() < 2.0

# %% [markdown]
# Straight conditional paths do not make straight learned paths. The model follows the
# *average* velocity at each point, and a base point near the centre does not "know" which
# blob it will end in until late, so its path bends as it commits: the learned paths are about
# a third longer than the straight line, more than the quarter circles (which, by this measure,
# are only a few percent longer than their chords). Rectified flow (Liu et al., 2023)
# straightens them by retraining on the model's own pairs $(z, f(z))$ ("reflow"), which is one
# way to make few-step samplers.
#
# How many solver steps does a sample need? We draw 5,000 samples of the eight Gaussians with
# the plain Euler method and $N$ steps, and count the share that lands within three standard
# deviations (0.9) of a centre, which is 98.9% for the truth:

# %%
centres = nf.data.get("eight_gaussians").means.float()
base_points = torch.randn(5000, 2, generator=torch.Generator().manual_seed(5))
shares = {}
for n in (1, 2, 4, 8, 16, 32):
    with torch.no_grad(), eight["flow"].layers[0].solver(method="euler", steps=n):
        samples = eight["flow"].layers[0].trajectory(base_points, torch.tensor([0.0, 1.0]))[-1]
    shares[n] = (torch.cdist(samples, centres).min(1).values < 0.9).float().mean().item()
print("Euler steps and share of samples near a centre:", ", ".join(f"{n}: {s:.1%}" for n, s in shares.items()))
assert shares[1] < 0.2 < 0.8 < shares[4] <= shares[8] + 0.02 and shares[32] > 0.9

# %% [markdown]
# One Euler step lands no sample in a blob. At $t = 0$ the point $x_0 = z$ tells nothing about
# its data partner, so the field there is the average velocity $\mathbb E[x] - z$, and one
# step of length 1 moves every base point onto the mean of the data, the empty centre of the
# ring. Four steps put 89% of
# the samples near a centre and eight 94%, close to 32 steps' 97%. A handful of steps is
# enough because the paths, though not straight, are smooth; the first diffusion models, with
# more curved paths and noisier fields, needed hundreds.

# %% [markdown]
# ## 7. Exercises
#
# Each exercise has a cell for your answer: replace the `...` and run it, then run the cell
# below it, whose `check` says whether the answer is right and, if not, what is off. Stuck?
# Remove the `#` before `hint()` in the next cell; once you have tried, the one before
# `solution()` shows a worked answer.
#
# **Exercise 1.** A 2D linear field $v(x) = A x$ with
# $A = \begin{pmatrix} 0.5 & 2 \\ -1 & -0.2 \end{pmatrix}$ runs from $t = 0$ to $t = 1$. What is
# $\log|\det \partial f / \partial z|$ of its flow map?

# %%
answer = ...  # a number

# %%
questions["log_det"].check(answer)

# %%
# questions["log_det"].hint()
# questions["log_det"].solution()

# %% [markdown]
# **Exercise 2.** Flow matching pairs the base point $z = (0, 1)$ with the data point
# $x = (2, -1)$ and draws $t = 0.25$. What velocity is the network trained to output at $x_t$?
# Give a tensor of two numbers.

# %%
answer = ...  # a tensor of 2 numbers

# %%
questions["target"].check(answer)

# %%
# questions["target"].hint()
# questions["target"].solution()

# %% [markdown]
# **Exercise 3.** A fixed-step RK4 solver evaluates the velocity 4 times per step. Scoring a
# batch with `method="rk4", steps=10` as in section 2: how many evaluations of $v$ (NFE)?

# %%
answer = ...  # a number

# %%
questions["nfe"].check(answer)

# %%
# questions["nfe"].hint()
# questions["nfe"].solution()

# %% [markdown]
# ## Summary
#
# - The flow map of an ODE $\dot x = v(x, t)$ is invertible for any smooth $v$, and its
#   log-determinant is $\int_0^1 \operatorname{div} v\,dt$; on $v = Ax$ the solver matched
#   $e^A z$ and $\operatorname{tr} A$ to eight digits.
# - `nf.ContinuousFlow` solves it with `dopri5` or a fixed-step method, with the exact
#   divergence or Hutchinson's (labelled) estimate, and reports its NFE.
# - Flow matching regresses $v$ onto the velocities $x - z$ of straight paths: no solver in
#   training. In 2,000 steps it came within about 0.10 nats of the moons and 0.04 of the eight
#   Gaussians, better than RealNVP and MAF, on a par with NSF on the Gaussians; scoring and
#   sampling cost an ODE solve (NFE 70 to 90 with `dopri5`, 40 with RK4-10).
# - A maximum-likelihood step through the solver cost as much as a score of flow-matching
#   steps, and 40 of them left the model far from the moons.
# - The learned paths bend (about a third longer than straight lines), yet 8 Euler steps put
#   94% of the samples in the blobs; diffusion models are the same idea on curved paths, and
#   rectified flows straighten the learned ones.
#
# ## Where to go next
#
# This is the last lesson of the course. You have met the main families of normalizing flows,
# trained each on a CPU in seconds and measured each against the truth. Beyond them:
#
# **More expressive or more scalable flows.**
# - *Neural autoregressive flows* (NAF, Huang et al., 2018) and *unconstrained monotonic
#   networks* use a small monotone network per coordinate instead of a spline.
# - *Multi-scale image flows*: Glow (Kingma & Dhariwal, 2018) on real images, with invertible
#   $1\times1$ convolutions, squeezing and factoring out dimensions; lesson 8's Glow is its
#   vector version.
# - *Residual flows* (Chen et al., 2019) make $x + g(x)$ invertible by keeping $g$ a
#   contraction, with a stochastic log-determinant.
# - *Flows on manifolds* (spheres, tori, rotations) for data that does not live in
#   $\mathbb R^d$.
#
# **Continuous time, onwards.**
# - *Diffusion models* and *score matching* (Song et al., 2021), whose probability-flow ODE is
#   a continuous flow like ours; *rectified flows* (Liu et al., 2023) straighten the paths
#   further; *optimal-transport couplings* of minibatches (Tong et al., 2024) make them
#   straighter still.
# - *Stochastic interpolants* (Albergo & Vanden-Eijnden, 2023) unify flow matching and
#   diffusion.
#
# **Applications.**
# - *Density estimation and anomaly detection* (lesson 8), with the caveat that high likelihood
#   does not mean typical.
# - *Variational inference* with IAF and planar flows (lessons 4 and 6), and *simulation-based
#   inference*, where conditional flows learn posteriors from simulations (e.g. the `sbi`
#   package).
# - *Generation*: images (Glow), audio (WaveGlow), molecules (equivariant flows, Boltzmann
#   generators that sample physical systems with exact densities for reweighting).
# - *Lossless compression* (lesson 8): a likelihood model driving an entropy coder, made
#   practical by bits-back coding.
# - Libraries to continue with: zuko and nflows (PyTorch), normflows, Pyro's and TensorFlow
#   Probability's bijectors, and torchdiffeq for ODEs.
