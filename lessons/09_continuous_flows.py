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
# - how a flow-matched model on moons and eight Gaussians compares with RealNVP and NSF,
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
import contextlib
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
# **A field whose flow map we know.** In this lesson vectors are *columns*, as in the ODE
# literature: $v(x) = A x$ (lessons 1 and 3 wrote rows, $x = zA$; in code, with points as the
# rows of a batch, $A x$ is `x @ A.T`). The linear field $v(x) = A x$ has the flow map
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

# %% mystnb={"image": {"alt": "Two panels for the linear field v(x) = Ax. Left: grey arrows of the field spiralling inwards and three paths from their start points at t = 0 to their end points at t = 1. Right: the square grid from -3 to 3 carried to t = 1, turned and shrunk, every cell shrunk by the same factor."}}
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
    axes[0].plot(*paths[0, k], "o", color=viz.BASE_COLOR, label="start, t = 0" if k == 0 else None)
    axes[0].plot(*paths[-1, k], "o", color=viz.MODEL_COLOR, label="end, t = 1" if k == 0 else None)
axes[0].legend(fontsize=8, loc="lower right")
axes[0].set(title="v(x) = A x and three paths", aspect="equal")
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
# the data distribution (shown below, after training). The conditional flow matching loss
#
# $$\mathcal L(v) = \mathbb E_{t \sim U[0,1],\ z \sim \mathcal N(0, I),\ x \sim p}\,
# \big\| v(x_t, t) - (x - z) \big\|^2$$
#
# is a least-squares regression whose minimiser is that averaged field: it differs from the
# squared distance to the averaged field by a constant (derived and checked below).
# One training step costs one pass of the network on a batch of $(x_t, t)$: no solver, no
# divergence. `nf.fit_flow_matching` trains it with Adam, like `nf.fit`. The velocity network
# (`nf.VelocityMLP`) is a three-layer SiLU network of $x$, $t$ and a few sines and cosines of
# $t$, about 9,000 parameters. 2,000 steps of 512 pairs on each of two targets. (Times in this
# lesson are CPU seconds of the one thread that does the work, `time.process_time()`: other
# programs on the machine disturb them far less than they disturb wall-clock time.)

# %%
# 20 steps first, untimed: the first run in a session spends a second setting things up
nf.fit_flow_matching(nf.Flow([nf.ContinuousFlow(2)]), nf.data.get("moons"), steps=20, snapshot_every=20, progress=False)
cnf_runs = {}
for name in ["moons", "eight_gaussians"]:
    torch.manual_seed(0)
    model = nf.Flow([nf.ContinuousFlow(2)])
    start = time.process_time()
    history = nf.fit_flow_matching(model, nf.data.get(name), steps=2000, batch_size=512, progress=False,
                                   snapshot_every=200 if name == "eight_gaussians" else 2000)
    cnf_runs[name] = {"flow": model, "history": history, "train_s": time.process_time() - start}
    print(f"{name:<16} {sum(p.numel() for p in model.parameters()):,} parameters, trained in "
          f"{cnf_runs[name]['train_s']:.1f} s; final flow matching loss {history.losses[-1]:.3f}")

# %% [markdown]
# ### Why regressing on the pairs' velocities works
#
# Two claims were made above. Both take a few lines.
#
# **The averaged field carries the base onto the data.** Fix a data point $x$. The points
# $x_t = (1 - t)\,z + t\,x$ with $z \sim \mathcal N(0, I)$ have the density
# $p_t(y \mid x) = \mathcal N\big(y;\ t x,\ (1 - t)^2 I\big)$, and the one at $y$ moves with the
# velocity $u_t(y \mid x) = x - z = \frac{x - y}{1 - t}$. A density carried by a velocity field
# keeps its mass: what flows out of a small box is what the box loses. That is the
# **continuity equation**,
#
# $$\partial_t\, p_t(y \mid x) = -\operatorname{div}\big(p_t(y \mid x)\, u_t(y \mid x)\big).$$
#
# Average over the data: $p_t(y) = \mathbb E_{x \sim p}\, p_t(y \mid x)$ is the base
# $\mathcal N(0, I)$ at $t = 0$ and the data distribution at $t = 1$. The **marginal field** is
# the average velocity of the paths through $y$, each weighted by how likely it is to be there:
#
# $$u_t(y) = \frac{\mathbb E_x\big[p_t(y \mid x)\, u_t(y \mid x)\big]}{p_t(y)}
# = \mathbb E\big[x - z \mid x_t = y\big].$$
#
# The time derivative and the divergence both pass through the average over $x$, so
#
# $$\partial_t\, p_t(y) = \mathbb E_x\big[\partial_t\, p_t(y \mid x)\big]
# = -\operatorname{div}\, \mathbb E_x\big[p_t(y \mid x)\, u_t(y \mid x)\big]
# = -\operatorname{div}\big(p_t(y)\, u_t(y)\big).$$
#
# $p_t$ and $u_t$ obey the same continuity equation. The density that the ODE
# $\dot y = u_t(y)$ carries from the base obeys it too, and for a smooth field the equation has
# only one solution from a given start: that density is $p_t$ at every time, and at $t = 1$ it
# is the data distribution.
#
# **The two losses differ by a constant.** The loss we can compute compares $v$ with the pair's
# velocity $x - z$; the one we want compares it with $u_t$, which we cannot compute for real
# data. Write $v$ for $v(x_t, t)$ and $u$ for $u_t(x_t)$, and expand both squares:
#
# $$\mathcal L_{\text{cond}}(v) = \mathbb E\|v\|^2 - 2\,\mathbb E[v \cdot (x - z)]
# + \mathbb E\|x - z\|^2, \qquad
# \mathcal L_{\text{marg}}(v) = \mathbb E\|v - u\|^2 = \mathbb E\|v\|^2 - 2\,\mathbb E[v \cdot u]
# + \mathbb E\|u\|^2 .$$
#
# The cross terms are equal by the tower rule: $v$ depends on the pair only through
# $(x_t, t)$, so $\mathbb E[v \cdot (x - z)] = \mathbb E\big[v \cdot \mathbb E[x - z \mid x_t, t]\big]
# = \mathbb E[v \cdot u]$. What is left,
#
# $$\mathcal L_{\text{cond}}(v) - \mathcal L_{\text{marg}}(v) = \mathbb E\|x - z\|^2
# - \mathbb E\|u_t(x_t)\|^2,$$
#
# does not involve $v$: the two losses have the same gradients and the same minimiser, $u$.
# The constant is also the conditional loss of $u$ itself, the **floor** that no field can go
# below: a point $x_t$ lies on many straight paths with different velocities, and a field can
# only give their average. That is why the losses above stop far from 0 (near 5 on the eight
# Gaussians).
#
# **Checked.** For the eight Gaussians $u_t$ has a closed form. Within one component
# $\mathcal N(m_k, s^2 I)$, the point $x_t$ and the velocity $x - z$ are jointly Gaussian, so
# $\mathbb E[x - z \mid x_t = y, k] = m_k + c_k(t)\,(y - t\,m_k)$ with
# $c_k(t) = \frac{t s^2 - (1 - t)}{(1 - t)^2 + t^2 s^2}$, and the components are weighted by how
# likely each is to have put a point at $y$. We draw 100,000 triples $(t, z, x)$ and evaluate
# both losses on them for three fields: the trained one, the one trained on the moons (a wrong
# field for this target), and $v = 0$.

# %%
eight_target = nf.data.get("eight_gaussians")
means, stds, weights = eight_target.means.float(), eight_target.stds.float(), eight_target.weights.float()


def marginal_velocity(y, t):
    """u_t(y) = E[x - z | x_t = y] for a mixture of N(m_k, s_k^2 I): the sum over k of the posterior
    weight of component k at y times m_k + c_k (y - t m_k), c_k = (t s_k^2 - (1 - t)) / var_k, where
    x_t ~ N(t m_k, var_k I) with var_k = (1 - t)^2 + t^2 s_k^2 within component k."""
    t = t[:, None]
    var = (1 - t) ** 2 + t**2 * stds**2                       # (n, K)
    centred = y[:, None, :] - t[..., None] * means             # (n, K, d)
    log_weight = weights.log() - centred.square().sum(-1) / (2 * var) - y.shape[1] / 2 * var.log()
    c = (t * stds**2 - (1 - t)) / var
    return (log_weight.softmax(-1)[..., None] * (means + c[..., None] * centred)).sum(1)


generator = torch.Generator().manual_seed(6)
n = 100_000
x = eight_target.sample(n, generator=generator).float()
z = torch.randn(n, 2, generator=generator)
t = torch.rand(n, generator=generator)
x_t = (1 - t[:, None]) * z + t[:, None] * x
u = marginal_velocity(x_t, t)
fields = {"trained on the eight Gaussians": cnf_runs["eight_gaussians"]["flow"].layers[0].velocity,
          "trained on the moons": cnf_runs["moons"]["flow"].layers[0].velocity,
          "v = 0": lambda points, times: torch.zeros_like(points)}
differences = {}
print(f"{'field':<32}{'conditional loss':>18}{'marginal loss':>15}{'difference':>18}")
with torch.no_grad():
    for name, field in fields.items():
        v = field(x_t, t)
        conditional, marginal = (v - (x - z)).square().sum(-1), (v - u).square().sum(-1)
        differences[name] = conditional - marginal
        error = differences[name].std() / math.sqrt(n)
        print(f"{name:<32}{conditional.mean():>18.3f}{marginal.mean():>15.3f}{differences[name].mean():>11.3f} ± {error:.3f}")
# E|x - z|^2 = |m_k|^2 + 2 s^2 + 2 exactly (radius 2.5, s = 0.3); E|u|^2 by Monte Carlo
floor = 2.5**2 + 2 * 0.3**2 + 2 - u.square().sum(-1).mean().item()
floor_error = u.square().sum(-1).std().item() / math.sqrt(n)
print(f"the floor E|x - z|^2 - E|u|^2 = 8.43 - {8.43 - floor:.3f} = {floor:.3f} ± {floor_error:.3f}")
for name in fields:  # the same triples for every field: compare the differences pair by pair
    paired = differences[name] - differences["v = 0"]
    assert abs(paired.mean()) < 4 * paired.std() / math.sqrt(n) + 1e-4
    assert abs(differences[name].mean() - floor) < 4 * differences[name].std() / math.sqrt(n)
eight_fm_loss = (fields["trained on the eight Gaussians"](x_t, t) - (x - z)).square().sum(-1).mean().item()
assert 4.5 < floor < 5.5 and 0 < eight_fm_loss - floor < 0.1

# %% [markdown]
# The three fields' losses are several units apart, yet the difference between the conditional
# and the marginal loss is the same for all three, about 4.95, within the Monte Carlo error of
# 0.02: the constant of the derivation, and the floor, computed on its own as 4.94. The trained
# field's conditional loss, 4.96, is close to it: by the identity its excess over the floor is
# its marginal loss, 0.013, the mean squared distance from the exact field. (The last training loss printed above, 5.12, is one minibatch of 512
# pairs, which is noisier.) The training animation below draws this floor under the loss, not
# the target's entropy: the flow matching loss is a squared error of velocities, not a
# likelihood, and the two are not on one scale.
#
# What matters in the end is the likelihood of the result, and every score is an ODE solve
# backwards from the data with the exact divergence. Its cost is the number of function
# evaluations (NFE) of the velocity network, so first we find the cheapest solver that scores
# as well as a careful one. The reference: the adaptive Dormand-Prince method `dopri5` with
# tolerances $10^{-5}$, on 2,000 fresh test points of each target; against it, the fixed-step
# RK4 with 4 to 10 steps (4 evaluations per step). We time the model's `log_prob` alone (the
# target's own density, which the gap also needs, is not counted).

# %%
tests = {name: nf.data.get(name).sample(20_000, generator=torch.Generator().manual_seed(1))[:10_000] for name in cnf_runs}


def timed_log_q(model, points, **solver):
    """(log q of the points, the NFE of the solve, the CPU seconds of log_prob) for a continuous
    flow scored with the solver settings given; (log q, None, seconds) for any other flow."""
    continuous = solver and model.layers[0]
    with torch.no_grad(), continuous.solver(**solver) if continuous else contextlib.nullcontext():
        start = time.process_time()
        log_q = model.log_prob(points)
        return log_q, continuous.nfe if continuous else None, time.process_time() - start


solvers = {"dopri5, tolerances 1e-5": dict(method="dopri5", rtol=1e-5, atol=1e-5),
           **{f"RK4, {n} steps": dict(method="rk4", steps=n) for n in (4, 6, 8, 10)}}
print(f"{'solver':<26}{'target':<17}{'NFE':>5}{'seconds':>9}{'mean |change|':>15}{'largest':>9}")
misses = {}
for name, run in cnf_runs.items():
    reference = None
    for label, solver in solvers.items():
        log_q, nfe, seconds = timed_log_q(run["flow"], tests[name][:2000], **solver)
        reference = log_q if reference is None else reference
        miss = (log_q - reference).abs()
        misses[label, name] = (nfe, miss.mean().item(), miss.max().item())
        print(f"{label:<26}{name:<17}{nfe:>5}{seconds:>9.2f}{miss.mean():>15.1e}{miss.max():>9.1e}")
cheapest = next(label for label in solvers if label != "dopri5, tolerances 1e-5"
                and all(misses[label, name][1] < 1e-3 for name in cnf_runs))
print(f"the fewest evaluations that move log q by under a thousandth of a nat on average: {cheapest}")
assert cheapest == "RK4, 10 steps" and all(misses[cheapest, name][2] < 0.03 for name in cnf_runs)
assert all(misses[cheapest, name][0] < misses["dopri5, tolerances 1e-5", name][0] / 1.8 for name in cnf_runs)

# %% [markdown]
# RK4 with 10 steps (40 evaluations) moves the log-densities by less than a thousandth of a nat
# on average, and by under three hundredths at the worst point, with about half the
# evaluations of `dopri5` at these tolerances (80 to 90 here); fewer RK4 steps miss by more.
# A thousandth of a nat on average is a fraction of the gap's own sampling error, so the rest
# of the lesson scores with RK4 and 10 steps. Now the gaps, on all 10,000 test points:

# %%
def score(model, name, points, **solver):
    """(nf.gap of the model on the points, its log q of each point, the seconds its log_prob took);
    ``solver``: the solver settings of a continuous flow."""
    kept = {}

    def log_q(x):
        kept["log_q"], _, kept["seconds"] = timed_log_q(model, x, **solver)
        return kept["log_q"]

    return nf.gap(log_q, nf.data.get(name), points), kept["log_q"], kept["seconds"]


for name, run in cnf_runs.items():
    run["gap"], run["log_q"], run["eval_s"] = score(run["flow"], name, tests[name], method="rk4", steps=10)
    print(f"{name:<16} gap {run['gap']} ({run['eval_s']:.1f} s for 10,000 points)")
assert cnf_runs["moons"]["gap"].nats < 0.2 and cnf_runs["eight_gaussians"]["gap"].nats < 0.08

# %% [markdown]
# Flow matching ends about **0.10 nats** from the moons and **0.04** from the eight Gaussians.

# %% [markdown]
# ### Watch it train, and the learned transformation
#
# The snapshots show samples (from the same base points each time, solved with a cheap
# 4-step RK4) and the density as training goes, with the loss over its floor (the dashed
# line); then the trained field carrying base samples and a grid to the eight Gaussians along
# its ODE time, and the data back to the base.

# %% mystnb={"image": {"alt": "Last frame of the training player for flow matching on the eight Gaussians: samples from the same base points forming eight clusters over the target's samples, the model density with eight blobs, and the flow matching loss falling to the dashed floor of the exact field's loss; the controls need a running kernel."}}
eight = cnf_runs["eight_gaussians"]
floor_line = (floor, f"the floor: the exact field's loss, {floor:.2f}")
widgets.TrainingPlayer(eight["history"], reference=floor_line)

# %% mystnb={"image": {"alt": "Animation of training a continuous flow by flow matching on the eight Gaussians: the samples go from one round cloud to eight separate clusters arranged in a circle, the density sharpens into eight blobs, and the loss falls to the dashed floor."}}
gif = eight["history"].save_gif("09_flow_matching_training.gif", reference=floor_line)
Image(filename=gif)

# %% mystnb={"image": {"alt": "Animation of the trained continuous flow along its ODE time: base samples coloured by where they start and a square grid flow smoothly outwards into eight clusters on a circle, and real samples of the eight Gaussians flow back to a round standard normal cloud."}}
eight_data = tests["eight_gaussians"][:600]
gif = viz.save_transformation_gif(eight["flow"], "09_cnf_transformation.gif", data=eight_data,
                                  bounds=((-4, 4), (-4, 4)))
Image(filename=gif)

# %% [markdown]
# The same as a player: drag the **ODE time** from 0 (the base) to 1 (the data).

# %% mystnb={"image": {"alt": "Static picture of the transformation player at ODE time 1: the points and grid carried into the eight Gaussians; the time slider needs a running kernel."}}
widgets.TransformationPlayer(eight["flow"], data=eight_data, bounds=((-4, 4), (-4, 4)))

# %% [markdown]
# ### The field itself
#
# A continuous-time flow *is* its vector field. Drag the time: the arrows show $v(x, t)$, the
# dots are 500 base samples carried to that time. Early on the field pushes outwards in eight
# directions; near $t = 1$ it pulls points into the blobs. (Needs a running kernel.)

# %% mystnb={"image": {"alt": "Static picture of the vector-field explorer at t = 0.5: grey arrows of the learned velocity v(x, t) and 500 base samples, coloured by starting position, carried to that time and already splitting towards eight clusters; the time slider needs a running kernel."}}
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
# conditioners of 32 units, 500 steps of 256): RealNVP stands for the affine flows (in lesson 7,
# MAF came within three tenths of a nat of it on both targets) and NSF for the splines. The
# table gives the gap in nats, the training time, and the time the model's `log_prob` takes on
# 10,000 test points, where the continuous flow pays: every score is an ODE solve.

# %%
builders = {
    "RealNVP": lambda: nf.flows.realnvp(2, layers=4, hidden=32),
    "NSF": lambda: nf.flows.nsf(2, layers=4, hidden=32, bins=8, bound=4.0),
}
table = {}
for target_name in cnf_runs:
    target = nf.data.get(target_name)
    for name, build in builders.items():
        torch.manual_seed(0)
        model = build()
        start = time.process_time()
        nf.fit(model, target, steps=500, batch_size=256, lr=1e-2, snapshot_every=500, progress=False)
        train_s = time.process_time() - start
        gap, _, eval_s = score(model, target_name, tests[target_name])
        table[target_name, name] = (gap, train_s, eval_s)
    run = cnf_runs[target_name]
    table[target_name, "CNF (flow matching)"] = (run["gap"], run["train_s"], run["eval_s"])

print(f"{'target':<16}{'model':<21}{'gap (nats)':>18}{'training':>10}{'scoring 10,000':>16}")
for (target_name, name), (gap, train_s, eval_s) in table.items():
    print(f"{target_name:<16}{name:<21}{gap.nats:>10.3f} ± {gap.standard_error:.3f}{train_s:>9.1f}s{eval_s:>15.2f}s")
slowdown = {t: table[t, "CNF (flow matching)"][2] / table[t, "NSF"][2] for t in cnf_runs}
print("\nscoring 10,000 points, the CNF (RK4, 10 steps) against the NSF: "
      + ", ".join(f"{ratio:.0f} times as long on {t}" for t, ratio in slowdown.items()))
cnf_gap = {t: table[t, "CNF (flow matching)"][0].nats for t in cnf_runs}
assert cnf_gap["eight_gaussians"] < table["eight_gaussians", "RealNVP"][0].nats / 3
assert cnf_gap["eight_gaussians"] < table["eight_gaussians", "NSF"][0].nats + 0.02
assert table["moons", "NSF"][0].nats < cnf_gap["moons"] < table["moons", "RealNVP"][0].nats
assert all(10 < ratio < 300 for ratio in slowdown.values())

# %% [markdown]
# On the eight Gaussians the flow-matched CNF is as close to the truth as the spline flow and
# far closer than RealNVP; on the moons it beats the affine flow but not the spline
# flow. The price is at evaluation. The ratio printed last is the time of the CNF's `log_prob`
# on the 10,000 test points over the NSF's, on one thread: 40 evaluations of the velocity
# network (RK4, 10 steps), each with a backward pass per dimension for the exact divergence,
# against one pass through four spline layers. It came out between 18 and 25 in our runs on one
# machine (twice that with `dopri5`); it depends on the machine and on the two networks' sizes,
# so expect a few tens rather than any exact number. Sampling costs the same solve without the
# divergence. Training, on the other hand, is cheap per step (no solver), though it needs more
# steps.

# %% mystnb={"image": {"alt": "Four density panels: the true moons and the continuous flow's moons, then the true eight Gaussians and the continuous flow's eight Gaussians, each model titled with its gap in nats; the flow reproduces both shapes closely."}}
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), layout="constrained")
for row, target_name in enumerate(cnf_runs):
    target = nf.data.get(target_name)
    ax_true, ax_model = axes[2 * row], axes[2 * row + 1]
    top = float(viz.density_on_grid(target.log_prob, target.bounds, 80).max())
    viz.plot_density(target.log_prob, target.bounds, ax_true, size=80, vmax=top, title=f"{target_name}: truth")
    with torch.no_grad(), cnf_runs[target_name]["flow"].layers[0].solver(method="rk4", steps=10):
        viz.plot_density(cnf_runs[target_name]["flow"].log_prob, target.bounds, ax_model, size=80, vmax=top,
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
# the moons, then train a fresh flow-matching model for 700 steps of 512 pairs, which take about
# as long as those 40 or less (both times are printed), and score both on 5,000 test points:

# %%
torch.manual_seed(0)
by_likelihood = nf.Flow([nf.ContinuousFlow(2, method="rk4", steps=4)])
start = time.process_time()
nf.fit(by_likelihood, nf.data.get("moons"), steps=40, batch_size=256, lr=1e-2, snapshot_every=40, progress=False)
likelihood_s = time.process_time() - start
torch.manual_seed(0)
same_time = nf.Flow([nf.ContinuousFlow(2)])
start = time.process_time()
nf.fit_flow_matching(same_time, nf.data.get("moons"), steps=700, batch_size=512, progress=False, snapshot_every=700)
same_time_s = time.process_time() - start
gaps = {}
for name, model in (("likelihood", by_likelihood), ("flow matching", same_time)):
    with model.layers[0].solver(method="rk4", steps=10):
        gaps[name] = nf.gap(model, nf.data.get("moons"), tests["moons"][:5000])
print(f"maximum likelihood through the ODE: {1000 * likelihood_s / 40:.0f} ms per step; 40 steps in {likelihood_s:.1f} s, "
      f"gap {gaps['likelihood']}")
print(f"flow matching: {1000 * same_time_s / 700:.1f} ms per step; 700 steps in {same_time_s:.1f} s, "
      f"gap {gaps['flow matching']}  (2,000 steps: {cnf_runs['moons']['gap'].nats:.3f} nats)")
assert same_time_s < 1.3 * likelihood_s  # about the same time or less, on a busy machine too
assert 0.4 < gaps["flow matching"].nats < gaps["likelihood"].nats / 3 and 1.4 < gaps["likelihood"].nats < 1.7

# %% [markdown]
# A maximum-likelihood step costs tens of flow-matching steps: it runs the network on every
# solver stage, computes the divergence with its second derivatives, and backpropagates through
# all of it. Its forty steps leave the model about 1.5 nats from the moons; in about the same
# time, 700 flow-matching steps end about 0.46 nats away, three times closer, and the full
# 2,000-step run gets to 0.10. (On a quiet machine the 700 steps take about two thirds of the
# time of the forty; the assert above checks the times of your run.) Maximum
# likelihood does learn the moons given a few hundred steps (try `steps=300` if you can wait),
# but at equal time flow matching is far ahead. That
# is why flow matching made continuous flows practical.

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

# %% mystnb={"image": {"alt": "Two panels of paths from 12 base points (circles) to data points (stars). Left: the conditional paths of flow matching are straight segments, those of a variance-preserving diffusion quarter circles, dashed. Right: the learned paths of the trained continuous flow are smooth curves, somewhat longer than straight lines."}}
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
for ax, ends, end_label in ((axes[0], pair_x, "its data point x (t = 1)"), (axes[1], learned[-1], "where the flow takes it (t = 1)")):
    ax.scatter(pair_z[:, 0], pair_z[:, 1], s=22, color="w", edgecolors="k", linewidths=1, zorder=3,
               label="base point z (t = 0)")
    ax.scatter(ends[:, 0], ends[:, 1], s=40, marker="*", color="k", zorder=3, label=end_label)
    ax.legend(fontsize=8, loc="lower left")
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
# deviations (0.9) of a centre, which is 98.9% for the truth ($1 - e^{-9/2}$ for a 2D
# Gaussian; printed first, with the share of the truth's own test samples):

# %%
centres = nf.data.get("eight_gaussians").means.float()
base_points = torch.randn(5000, 2, generator=torch.Generator().manual_seed(5))
truth_share = (torch.cdist(tests["eight_gaussians"].float(), centres).min(1).values < 0.9).float().mean().item()
print(f"the truth: {1 - math.exp(-4.5):.1%} (1 - e^(-9/2)); {truth_share:.1%} of its 10,000 test samples")
assert abs(truth_share - (1 - math.exp(-4.5))) < 0.005
shares = {}
for n in (1, 2, 4, 8, 16, 32):
    with torch.no_grad(), eight["flow"].layers[0].solver(method="euler", steps=n):
        samples = eight["flow"].layers[0].trajectory(base_points, torch.tensor([0.0, 1.0]))[-1]
    shares[n] = (torch.cdist(samples, centres).min(1).values < 0.9).float().mean().item()
print("Euler steps and share of samples near a centre:", ", ".join(f"{n}: {s:.1%}" for n, s in shares.items()))
assert shares[1] < 0.01 and 0.8 < shares[4] <= shares[8] + 0.02 and shares[32] > 0.9

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
# **Exercise 3.** A fixed-step solver takes `steps` steps per unit of time, but it must also
# stop at every time it is asked for, so it takes at least one step between two consecutive
# requested times; RK4 evaluates $v$ 4 times per step. With `method="rk4", steps=10`, how many
# evaluations of $v$ (NFE) does `trajectory(points, torch.linspace(0, 1, 21))` make, asking for
# the points at 21 times? (The field explorer of section 2 also asks for 21 times, with
# `steps=20`.)

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
#   training. Its loss is the squared distance to the marginal field $u_t$ plus a constant that
#   no field can go below (about 4.94 on the eight Gaussians, where the trained field ended
#   0.013 above it), and $u_t$ carries the base onto the data by the continuity equation. In 2,000 steps it
#   came within about 0.10 nats of the moons and 0.04 of the eight Gaussians, better than
#   RealNVP, on a par with NSF on the Gaussians; scoring and sampling cost an ODE solve
#   (NFE 80 to 90 with `dopri5`; RK4 with 10 steps, NFE 40, scored as well to a thousandth of
#   a nat on average), some 18 to 25 times the NSF's time here.
# - A maximum-likelihood step through the solver cost tens of flow-matching steps; in the time
#   of 40 of them, flow matching got three times closer to the moons.
# - The learned paths bend (about a third longer than straight lines), yet 8 Euler steps put
#   94% of the samples in the blobs; diffusion models are the same idea on curved paths, and
#   rectified flows straighten the learned ones.
#
# **Next:** [Lesson 10 · Conditional flows: densities on demand](10_conditional_flows.ipynb)
