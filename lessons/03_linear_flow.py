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
# # Lesson 3 · A 2D linear flow
#
# [Lesson 2](02_affine_flow.ipynb) fitted a scale and a shift in one dimension. Applied to each
# coordinate of a 2D point separately, such a layer stretches the plane along the axes, but it
# can never tilt it: it cannot make two coordinates **correlated**. A dense matrix can. This
# lesson builds the linear layer $x = zW + b$, fits it by maximum likelihood to 500 samples of a
# correlated Gaussian (a classic first experiment with flows, done with every number checked),
# and then looks at what that layer costs: its log-determinant, which is what the next lessons are designed to
# make cheap.
#
# **What you will learn**
# - how a linear layer $x = zW + b$ turns $\mathcal N(0, I)$ into the Gaussian
#   $\mathcal N(b, W^\top W)$, and how its log-determinant is computed with `slogdet`;
# - how to fit it by maximum likelihood and check the result against the closed-form answer
#   (the sample mean and the biased sample covariance);
# - how far a model is from the truth in nats (test NLL minus entropy), and why 500 samples
#   leave a small gap;
# - why a dense log-determinant costs $O(d^3)$ and how a triangular (LU) parametrisation makes
#   it $O(d)$: measured, not just claimed.
#
# **Prerequisites**: [Lesson 2 · A 1D affine flow](02_affine_flow.ipynb) (a learnable layer,
# `nf.fit`, the gap in nats); matrix products, transposes and determinants; what a covariance
# matrix is. **Time**: about 35 minutes.

# %%
# Opened alone (on Colab, say), a lesson first installs the course's package; elsewhere this does nothing.
import importlib.util, subprocess, sys  # noqa: E401
if importlib.util.find_spec("nflesson") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "nflesson @ git+https://github.com/OWNER/REPO"], check=True)

# %%
import math
import timeit

import matplotlib.pyplot as plt
import torch
from IPython.display import Image
from torch import distributions as D

import nflesson as nf
from nflesson import exercises, viz, widgets

torch.manual_seed(0)
torch.set_num_threads(1)  # the models here are tiny: one thread beats two that wait for each other
plt.rcParams["figure.dpi"] = 80
questions = exercises.lesson(3)


def rounded(tensor, digits=3):
    """A tensor as nested lists of rounded numbers, for printing."""
    return tensor.detach().double().numpy().round(digits).tolist()

# %% [markdown]
# ## 1. The target: a Gaussian with correlated coordinates
#
# The target is a Gaussian with mean $(5, 7)$,
#
# $$p(x) = \mathcal N(x;\ \mu, \Sigma), \qquad \mu = (5,\ 7), \qquad
# \Sigma = \begin{pmatrix} 2 & 0.7 \\ 0.7 & 1 \end{pmatrix},$$
#
# whose two coordinates have correlation $0.7 / \sqrt{2 \cdot 1} \approx 0.49$. We draw 500
# samples from it with a seeded generator: that is the **training set**, all the model will see.
# `nf.data.get("gaussian2d")` also knows the exact density and entropy, which we use only to
# grade the model afterwards.

# %%
target = nf.data.get("gaussian2d")
generator = torch.Generator().manual_seed(0)
data = target.sample(500, generator=generator)  # the training set, shape (500, 2)
print("true mean      ", target.mean.tolist())
print("true covariance", target.cov.tolist())
print("training set   ", tuple(data.shape), " first rows:", rounded(data[:3]))

# %% [markdown]
# **A common slip.** Drop the decimal point and this covariance becomes
# $\begin{pmatrix} 2 & 7 \\ 7 & 1 \end{pmatrix}$, which looks just as plausible on paper. That
# matrix cannot be a covariance. A covariance must be positive semi-definite, because the variance of
# any projection $x \cdot v$ is $v^\top \Sigma v$, and a variance is never negative. This matrix
# has a negative eigenvalue, so along the corresponding eigenvector its "variance" is negative,
# and `torch.distributions` refuses it:

# %%
typo = torch.tensor([[2.0, 7.0], [7.0, 1.0]])
eigenvalues, eigenvectors = torch.linalg.eigh(typo)
v = eigenvectors[:, 0]
print("eigenvalues of [[2, 7], [7, 1]]:    ", rounded(eigenvalues))
print(f"'variance' along v = {rounded(v)}:  vᵀ Σ v = {(v @ typo @ v).item():.3f}")
print("eigenvalues of [[2, 0.7], [0.7, 1]]:", rounded(torch.linalg.eigvalsh(target.cov)))
try:
    D.MultivariateNormal(torch.zeros(2), covariance_matrix=typo)
except ValueError as error:
    assert "PositiveDefinite" in str(error)
    print("MultivariateNormal raises ValueError: the covariance must satisfy the constraint PositiveDefinite()")
assert eigenvalues[0] < 0 < torch.linalg.eigvalsh(target.cov)[0]

# %% [markdown]
# We will see below that a linear flow can only produce covariances of the form $W^\top W$,
# which are always positive semi-definite: no linear flow could fit the typo. Here is the real
# target. The black curves are the contours of its density at 1, 2 and 3 "standard deviations"
# (for a Gaussian, where the density has dropped to $e^{-1/2}$, $e^{-2}$ and $e^{-9/2}$ of its
# peak). The box is large enough to also hold the origin, where the untrained model will start.

# %% mystnb={"image": {"alt": "Scatter plot of the 500 training samples, a tilted elliptical cloud around (5, 7), with black contour ellipses of the target Gaussian at 1, 2 and 3 standard deviations; the box also holds the origin."}}
bounds = ((-4.0, 11.0), (-4.0, 11.0))  # holds the target and a standard normal at the origin


def draw_contours(ax, log_prob, box=bounds, color="k"):
    """Contours of a 2D density at 1, 2 and 3 'standard deviations' (Gaussian levels)."""
    ticks, _ = viz.grid_points(box, 200)
    values = viz.density_on_grid(log_prob, box, 200)
    levels = sorted(values.max() * math.exp(-0.5 * r**2) for r in (1, 2, 3))
    ax.contour(ticks[0], ticks[1], values, levels=levels, colors=color, linewidths=1)


fig, ax = plt.subplots(figsize=(4.6, 4.2), layout="constrained")
viz.plot_samples(data, ax, bounds=bounds, color=viz.TARGET_COLOR, size=6, alpha=0.7, label="500 training samples")
draw_contours(ax, target.log_prob)
ax.set(aspect="equal", title="the target N(μ, Σ) and the training set")
ax.legend(fontsize=8, loc="lower right", markerscale=2)
plt.show()

# %% [markdown]
# ## 2. A linear layer, written out
#
# A **linear flow** (strictly speaking affine, because of the shift) maps a base point
# $z \in \mathbb R^2$, a row vector as in PyTorch, to
#
# $$x = f(z) = zW + b ,$$
#
# with a $2 \times 2$ matrix $W$ and a shift $b$. Coordinate by coordinate,
# $x_j = \sum_i z_i W_{ij} + b_j$, so $\partial x_j / \partial z_i = W_{ij}$: the Jacobian is
# $W^\top$ at every point, and $\det W^\top = \det W$. The change of variables formula of
# lesson 1 gives the exact log-density
#
# $$\log p_x(x) = \log \mathcal N(z;\ 0, I) - \log|\det W| , \qquad z = f^{-1}(x) = (x - b)\,W^{-1},$$
#
# valid as long as $\det W \ne 0$. The log-determinant is one number, the same for every point.
#
# **Which distribution is this?** A linear function of a Gaussian is Gaussian. Its mean is
# $\mathbb E[zW + b] = b$ and its covariance is
# $\mathbb E\big[(zW)^\top (zW)\big] = W^\top\, \mathbb E[z^\top z]\, W = W^\top W$, so
#
# $$x \sim \mathcal N\big(b,\ W^\top W\big).$$
#
# Every Gaussian on $\mathbb R^2$ with an invertible covariance is of this form (any such
# $\Sigma$ equals $W^\top W$ for some invertible $W$, for instance its Cholesky factor), and
# nothing else is. Our target is one of them:
# the model family contains the truth, so we can check the fit against known answers.
#
# **Why `slogdet`.** One could write `torch.det(W).abs().log()`, but a determinant is a product
# of $d$ factors, and in high dimension it underflows to 0 or overflows to infinity long before
# its logarithm is in any trouble. `torch.linalg.slogdet` returns the sign and $\log|\det W|$
# separately, adding logs along the way. A 200-dimensional example, $W = 0.5\,I$:

# %%
half = 0.5 * torch.eye(200)  # det = 0.5**200, about 6e-61: smaller than any float32
print("torch.det(W).abs().log():", torch.det(half).abs().log().item())
print(f"torch.linalg.slogdet(W):  {torch.linalg.slogdet(half).logabsdet.item():.4f}   exact: {200 * math.log(0.5):.4f}")

# %% [markdown]
# Here is the layer, written out. As every layer in `nflesson`, it is a `Bijector`: calling it
# maps base $\to$ data, `.inverse` maps data $\to$ base, and both return the log-determinant of
# the direction called, one number per row of the batch. The inverse solves $zW = x - b$ for $z$
# rather than forming $W^{-1}$.

# %%
class LinearByHand(nf.Bijector):
    """x = z W + b, with log|det J| = log|det W| from slogdet."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.weight = torch.nn.Parameter(torch.eye(dim))  # W = I and b = 0:
        self.bias = torch.nn.Parameter(torch.zeros(dim))  # a fresh layer is the identity

    def _forward(self, z):  # base -> data
        log_det = torch.linalg.slogdet(self.weight).logabsdet
        return z @ self.weight + self.bias, log_det.expand(len(z))

    def _inverse(self, x):  # data -> base: solve z W = x - b
        z = torch.linalg.solve(self.weight, x - self.bias, left=False)
        log_det = -torch.linalg.slogdet(self.weight).logabsdet
        return z, log_det.expand(len(x))


# %% [markdown]
# `nf.Linear` is the same layer. Give both the same $W$ and $b$: their densities agree with each
# other and with `torch.distributions.MultivariateNormal(b, WᵀW)`, and the inverse undoes the
# forward map.

# %%
W_example = torch.tensor([[1.2, 0.5], [-0.3, 0.8]])
b_example = torch.tensor([5.0, 7.0])
by_hand, packaged = LinearByHand(2), nf.Linear(2)
with torch.no_grad():
    for layer in (by_hand, packaged):
        layer.weight.copy_(W_example)
        layer.bias.copy_(b_example)

points = b_example + 2 * torch.randn(1000, 2)
with torch.no_grad():
    log_p = nf.Flow([by_hand]).log_prob(points)
    z, _ = by_hand.inverse(points)
    assert torch.allclose(log_p, nf.Flow([packaged]).log_prob(points), atol=1e-5)
    gaussian = D.MultivariateNormal(b_example, covariance_matrix=W_example.T @ W_example)
    assert torch.allclose(log_p, gaussian.log_prob(points), atol=1e-4)
    assert torch.allclose(by_hand(z)[0], points, atol=1e-5)
print("log|det W| =", round(by_hand(z)[1][0].item(), 5), "= log", round(torch.linalg.det(W_example).item(), 5))
print("LinearByHand, nf.Linear and MultivariateNormal(b, WᵀW) agree on 1000 points")

# %% [markdown]
# ## 3. Fitting by maximum likelihood
#
# The model is `nf.Flow([nf.Linear(2)])`: a standard normal base pushed through one linear layer.
# It starts as the identity ($W = I$, $b = 0$), so its samples sit around the origin, far from
# the data. Training minimises the NLL of the $n = 500$ training points. For $d = 2$,
# $-\log \mathcal N(z; 0, I) = \log 2\pi + \tfrac12 |z|^2$, so
#
# $$\text{NLL}(W, b) = \log 2\pi + \log|\det W| + \frac{1}{2n}\sum_{i=1}^{n} \big|(x_i - b)\,W^{-1}\big|^2 .$$
#
# The two terms pull against each other. The squared term wants a large $W$, which maps the
# data close to the origin of the base, where the base density is high. The log-determinant
# wants a small $W$: a density spread over a large area is low everywhere. The optimum balances
# them.
#
# `nf.fit` minimises this with Adam (with a cosine decay of the learning rate) and returns a
# `History`: the loss at every step and, every `snapshot_every` steps, a snapshot of the model
# (samples from fixed base noise, the density on a grid, the parameters).
#
# **Settings, and why.** A common recipe for this experiment runs 9,000 Adam steps on small
# batches and saves a frame every 300. Each of our steps uses all 500 points (`batch_size=500`, a full batch, so every step follows the exact
# gradient of the NLL), with a learning rate of 0.1, and 1,500 steps. We measured on this data:
# the run reaches the optimum (to float precision) by about step 700 and stays there (section 5
# checks it); the remaining steps are a margin, since the cosine schedule slows the last steps of
# any run down. A snapshot every 50 steps gives 31 frames, enough for a
# smooth animation. The run takes a couple of seconds.

# %%
torch.manual_seed(0)
flow = nf.Flow([nf.Linear(2)])
history = nf.fit(flow, data, steps=1500, batch_size=len(data), lr=0.1, snapshot_every=50, bounds=bounds,
                 progress=False)  # a couple of seconds: no progress bar needed

W, b = flow.layers[0].weight.detach(), flow.layers[0].bias.detach()
print(f"{len(history.losses)} steps, {len(history.snapshots)} snapshots, final loss {history.losses[-1]:.4f}")
print("learned b =", rounded(b, 4))
print("learned W =", rounded(W, 4))

# %% [markdown]
# ## 4. Watch it train
#
# Press **play** or drag the slider. Left: the training data (blue) and 1,000 model samples
# (orange). The base noise is the same in every frame, so you follow the same points as they
# move. Middle: the model density. Right: the loss so far, with the target's entropy dashed (the
# first losses, around 40, are above the top of the panel). The shift $b$ drags the cloud from
# the origin to the data within the first few hundred steps. Meanwhile $W$ first *stretches* the
# cloud into a long diagonal streak, so that some of its mass reaches the far-away data early
# (look at step 200), then shrinks it back into the target's ellipse once $b$ has arrived.
# (The player needs a running kernel; a static page shows its last frame, the trained model.)

# %% mystnb={"image": {"alt": "Last frame of the training player for the linear flow: model samples lying on the training data's ellipse near (5, 7), the model's density, and the loss curve falling to the target's entropy; the slider and play button need a running kernel."}}
widgets.TrainingPlayer(history, reference=target.entropy())

# %% [markdown]
# The same run as an animated GIF, saved next to this notebook (frames drawn by matplotlib and
# written by Pillow through `matplotlib.animation`; older recipes that grab frames with
# `fig.canvas.tostring_rgb()` fail, because current matplotlib no longer has that method):

# %% mystnb={"image": {"alt": "Animation of training the linear flow: the model's samples start as a round cloud at the origin, stretch into a long diagonal streak towards the data, then shrink onto the target ellipse around (5, 7), next to the model density and the falling loss."}}
gif = history.save_gif("03_linear_flow.gif", reference=target.entropy())
Image(filename=gif)

# %% [markdown]
# ### The learned transformation
#
# The animation above shows the *model* improving over the steps. The other picture of a flow is
# the *trained map itself* at work: 800 base samples, coloured by where they start (hue for the
# direction from the origin, darker further out), and a square grid drawn on the base, carried by
# $x = zW + b$ to the data; on the right, the density of the points at each moment. One layer
# means one move: every point slides along a straight line from $z$ to $zW + b$. What to look
# for: lines stay straight and parallel, squares become copies of one parallelogram whose area is
# $|\det W|$ times theirs, and the colours keep their neighbours, because an invertible map
# never tears or folds the plane.

# %% mystnb={"image": {"alt": "Animation of the trained linear flow: base samples, coloured by their starting position, and a square grid slide along straight lines from the standard normal at the origin to the tilted ellipse of the data; the grid stays straight and parallel, its squares becoming equal parallelograms, with the density of the points alongside."}}
transformation_gif = viz.save_transformation_gif(flow, "03_linear_transformation.gif", density=True)
Image(filename=transformation_gif)

# %% [markdown]
# The same as a player: drag the **layer time** from 0 (the base) to 1 (the data), or press
# play. (It needs a running kernel; a static page shows the data.)

# %% mystnb={"image": {"alt": "Static picture of the transformation player at its end: the points and the warped grid on the data's ellipse, with its density; the layer-time slider needs a running kernel."}}
widgets.TransformationPlayer(flow, density=True)

# %% [markdown]
# ## 5. What training converged to
#
# For a Gaussian, the maximum-likelihood answer is known in closed form: the **sample mean** and
# the **biased sample covariance** (divided by $n$, not $n - 1$; lesson 2 found the same for the
# 1D standard deviation):
#
# $$\hat\mu = \frac1n \sum_{i=1}^n x_i , \qquad
# \hat\Sigma = \frac1n \sum_{i=1}^n (x_i - \hat\mu)^\top (x_i - \hat\mu) .$$
#
# The flow knows nothing about this; it only follows gradients. So its $b$ should end at
# $\hat\mu$ and its $W^\top W$ at $\hat\Sigma$. The final loss should then be the NLL of
# $\mathcal N(\hat\mu, \hat\Sigma)$ on the training set,
# $\log 2\pi + 1 + \tfrac12 \log\det\hat\Sigma$ (at the optimum the squared term averages to
# exactly $d/2 = 1$).
#
# We compare $W^\top W$, not $W$: the matrix $W$ itself is not unique. For any rotation or
# reflection $Q$, $z$ and $zQ$ have the same distribution, so $QW$ gives the same model as $W$.
# The learned $W$ and the upper Cholesky factor $R$ of $\hat\Sigma$ (with $R^\top R = \hat\Sigma$)
# are two such choices.

# %%
sample_mean = data.mean(0)
sample_cov = torch.cov(data.T, correction=0)  # divided by n: the maximum-likelihood estimate
mle_nll = math.log(2 * math.pi) + 1 + 0.5 * torch.logdet(sample_cov).item()
learned_cov = W.T @ W


def row(name, mean, cov):
    print(f"{name:<24}{str(rounded(mean, 4)):<20}{rounded(cov, 4)}")


print(f"{'':<24}{'mean':<20}covariance")
row("learned: b and WᵀW", b, learned_cov)
row("sample (closed form)", sample_mean, sample_cov)
row("truth", target.mean, target.cov)
print(f"\nfinal loss {history.losses[-1]:.5f};  NLL at the closed-form answer {mle_nll:.5f};"
      f"  entropy of the target {target.entropy():.5f}")

R = torch.linalg.cholesky(sample_cov).T  # upper triangular, R^T R = sample_cov
print("learned W =", rounded(W), "  Cholesky R =", rounded(R), "  (the same WᵀW)")

mean_error = (b - sample_mean).abs().max().item()
cov_error = (learned_cov - sample_cov).abs().max().item()
print(f"\nlearned vs sample: mean off by {mean_error:.1e}, covariance off by {cov_error:.1e}")
print(f"learned vs truth:  mean off by {(b - target.mean).norm():.3f} (distance),"
      f" covariance off by {(learned_cov - target.cov).abs().max():.3f} (largest entry)")
assert mean_error < 1e-3 and cov_error < 1e-3
assert abs(history.losses[-1] - mle_nll) < 1e-4
assert torch.allclose(R.T @ R, learned_cov, atol=1e-3)

# %% [markdown]
# The flow lands on the closed-form answer to about $10^{-6}$. The truth is further away (a
# distance of about 0.05 for the mean, up to 0.02 in the covariance): the model fits
# *these 500 samples*, not the distribution they came from. The same shows in the loss, which
# ends slightly **below** the target's entropy. That is no contradiction: it is measured on the
# training points, which the model has adapted to. Only on fresh points must the NLL stay above
# the entropy (section 6).
#
# The figure shows where the loss went (left on a log scale, middle zoomed in on the end) and
# how the parameters closed in on the closed-form answer, read from the parameters stored in the
# snapshots. The error of $W^\top W$ first *grows*, up to about 10: that is the streak of the
# animation, $W$ inflated while $b$ travels. Then both errors fall to float precision (about
# $10^{-6}$) by step 700.

# %% mystnb={"image": {"alt": "Three panels. The training loss on a log scale, from about 40 down to the target's entropy; the end of the loss zoomed in, settling on the NLL of the closed-form answer; and the distances of b and of W-transpose-W to the sample mean and covariance, the covariance error first rising to about 10, then both falling to about 1e-6 by step 700."}}
steps = [s.step for s in history.snapshots]
b_error = [(s.state["layers.0.bias"] - sample_mean).abs().max().item() for s in history.snapshots]
cov_errors = [(s.state["layers.0.weight"].T @ s.state["layers.0.weight"] - sample_cov).abs().max().item()
              for s in history.snapshots]

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
viz.plot_loss(history.losses, axes[0], reference=target.entropy(), title="training loss (log scale)")
axes[0].set_yscale("log")
axes[0].set_yticks([3, 5, 10, 20, 40], labels=["3", "5", "10", "20", "40"])
axes[0].minorticks_off()
axes[1].axhline(mle_nll, color=viz.TARGET_COLOR, lw=4, alpha=0.4, label="NLL at the closed-form answer")
viz.plot_loss(history.losses, axes[1], reference=target.entropy(), title="zoomed in")
axes[1].set(xlim=(300, 1500), ylim=(mle_nll - 0.03, mle_nll + 0.12))
axes[2].semilogy(steps, b_error, "o-", ms=3, color=viz.MODEL_COLOR, label="max |b − sample mean|")
axes[2].semilogy(steps, cov_errors, "s-", ms=3, color=viz.TARGET_COLOR, label="max |WᵀW − sample covariance|")
axes[2].set(xlabel="step", title="distance to the closed-form answer")
axes[2].legend(fontsize=8, loc="center right")
plt.show()

unsettled = [k for k, errors in enumerate(zip(b_error, cov_errors)) if max(errors) >= 1e-5]
settled = steps[unsettled[-1] + 1]  # from this snapshot on, both errors stay below 1e-5
print(f"both errors stay below 1e-5 from step {settled} on")
assert 550 <= settled <= 850  # "by step 700"

# %% [markdown]
# Before and after, side by side. Top: the model's samples at step 0 (the identity flow) and after
# training, over the training data. Bottom, zoomed in on the data: the learned density with the
# contours of the true density in white, which frame its bright region closely; and what the
# learned map $z \mapsto zW + b$ does to the plane: the square grid $[-3, 3]^2$ of the base
# becomes a tilted, stretched parallelogram over the data.

# %% mystnb={"image": {"alt": "Four panels. Top: model samples at step 0, a round cloud at the origin far from the training data, and after training, on top of the data. Bottom left: the learned density, a bright tilted ellipse, framed by the white contours of the true density. Bottom right: the base grid from -3 to 3 mapped to a tilted, stretched parallelogram over the data."}}
fig, axes = plt.subplots(2, 2, figsize=(8.4, 8), layout="constrained")
for ax, snapshot, title in ((axes[0, 0], history.snapshots[0], "before training (step 0)"),
                            (axes[0, 1], history.snapshots[-1], f"after {steps[-1]:,} steps")):
    viz.plot_samples(data, ax, color=viz.TARGET_COLOR, size=5, alpha=0.5, label="training data")
    viz.plot_samples(snapshot.samples, ax, bounds=bounds, size=4, alpha=0.5, label="model samples", title=title)
    ax.legend(fontsize=8, loc="lower right", markerscale=3)
zoom = ((-1.0, 11.0), (1.0, 13.0))
viz.plot_density(flow.log_prob, zoom, axes[1, 0], title="learned density; white: the true contours")
draw_contours(axes[1, 0], target.log_prob, zoom, color="w")
viz.plot_samples(data, axes[1, 1], color=viz.TARGET_COLOR, size=5, alpha=0.4)
viz.plot_warped_grid(flow, ((-3, 3), (-3, 3)), axes[1, 1], lines=7, color=viz.MODEL_COLOR,
                     title="the base grid [-3, 3]² under z ↦ zW + b")
for ax, box in zip(axes.flat, (bounds, bounds, zoom, zoom)):
    ax.set(xlim=box[0], ylim=box[1], aspect="equal")
plt.show()

# %% [markdown]
# ## 6. How far from the truth, in nats
#
# As in every lesson, we grade the model by its **test NLL** on fresh samples minus the entropy
# of the target. The difference is the KL divergence from the truth $p$ to the model $q$:
#
# $$\mathbb E_{x \sim p}\big[-\log q(x)\big] - H(p)
# = \mathbb E_{x \sim p}\Big[\log \frac{p(x)}{q(x)}\Big] = \mathrm{KL}(p \,\|\, q) \ \ge 0 ,$$
#
# zero only for a perfect model. We estimate it on 20,000 fresh samples (the generator has moved
# on past the training set) and give the estimate's standard error. Between two Gaussians the KL
# also has a closed form (`torch.distributions.kl_divergence`), which checks the estimate.

# %%
test = target.sample(20_000, generator=generator)  # fresh samples, not the training set
gap = nf.gap(flow, target, test)  # mean of log p(x) - log q(x): test NLL - entropy, less noisy (lesson 2)
truth = D.MultivariateNormal(target.mean, covariance_matrix=target.cov)
model = D.MultivariateNormal(b.double(), covariance_matrix=learned_cov.double())
exact_kl = D.kl_divergence(truth, model).item()
plain_noise = flow.log_prob(test).std().item() / math.sqrt(len(test))  # standard error of test NLL - entropy
print(f"nf.gap: {gap};  exact KL(p || q) = {exact_kl:.4f} nats")
print(f"the plain estimate (test NLL - entropy) would carry a standard error of {plain_noise:.4f} nats")
assert 0.005 < plain_noise < 0.009  # "about 0.007"
assert abs(gap.nats - exact_kl) < 3 * gap.standard_error and gap.standard_error < 0.001
assert abs(gap.nats - 0.0012) < 0.0003 and abs(exact_kl - 0.0017) < 0.0003  # the numbers the text quotes

# %% [markdown]
# The model is about **0.002 nats** from the truth: `nf.gap` on the test samples says
# 0.0012 ± 0.0004, the exact formula 0.0017, and the two agree to within about one standard
# error. The plain estimate of lesson 2, test NLL minus entropy, would carry a noise of about
# 0.007 nats here (printed above), more than the gap itself: with fewer test samples it could even come out
# negative.
#
# Why is the gap not zero, when the model family contains the truth? Because maximum likelihood
# finds the Gaussian of the *sample*, $\mathcal N(\hat\mu, \hat\Sigma)$, and 500 samples do not
# pin $\mu$ and $\Sigma$ down exactly. How much that costs has a classical answer: for a model
# with $k$ free parameters fitted to $n$ samples, the expected KL of the maximum-likelihood fit is
# about $k / (2n)$ nats. A 2D Gaussian has $k = 5$ (two for the mean, three for the symmetric
# covariance), so $k / (2n) = 0.005$ nats at $n = 500$. Since training lands on the closed-form
# answer, we can check this without training anything: compute $\hat\mu$ and $\hat\Sigma$ for 200
# independent training sets of each size and average their exact KL.

# %% mystnb={"image": {"alt": "Log-log plot of the average exact KL divergence of the fitted Gaussian against the training-set size, from 20 to 5000 samples, falling along the dashed line k/(2n); a star marks this lesson's training set of 500, below the average."}}
sizes = [20, 50, 100, 200, 500, 1000, 2000, 5000]
repeats = 200
kl_generator = torch.Generator().manual_seed(1)
mean_kl, kl_at_500 = [], None
for n in sizes:
    sets = target.sample(repeats * n, generator=kl_generator).double().reshape(repeats, n, 2)
    mu_hat = sets.mean(1)
    centred = sets - mu_hat[:, None]
    sigma_hat = centred.transpose(1, 2) @ centred / n  # one biased covariance per training set
    kls = D.kl_divergence(truth, D.MultivariateNormal(mu_hat, sigma_hat))
    mean_kl.append(kls.mean().item())
    if n == 500:
        kl_at_500 = kls

fig, ax = plt.subplots(figsize=(5.2, 3.6), layout="constrained")
ax.loglog(sizes, mean_kl, "o-", color=viz.TARGET_COLOR, label=f"average exact KL over {repeats} training sets")
ax.loglog(sizes, [5 / (2 * n) for n in sizes], "k--", lw=1, label="k / (2n) with k = 5")
ax.loglog([len(data)], [exact_kl], "*", ms=14, color=viz.MODEL_COLOR, label="our training set")
ax.set(xlabel="training samples n", ylabel="KL(p || q) in nats", title="the price of a finite training set")
ax.legend(fontsize=8)
plt.show()

at_500 = mean_kl[sizes.index(500)]
luckier = (kl_at_500 < exact_kl).double().mean().item()  # the share of training sets that do better than ours
print(f"average KL at n = 500: {at_500:.4f} nats;  k / (2n) = {5 / 1000:.4f}")
print(f"our training set: {exact_kl:.4f} nats, {at_500 / exact_kl:.1f} times below the average; "
      f"{luckier:.0%} of the {repeats} training sets of 500 points do better")
assert abs(at_500 - 0.005) < 0.001 and 2.5 < at_500 / exact_kl < 3.2 and 0.08 < luckier < 0.2  # as the text says

# %% [markdown]
# Our training set (the star) is a lucky one: its 0.0017 nats are almost three times below the
# average of 0.0047, and only about one training set in seven (14% of the 200) does better. The
# KL of a single training set scatters widely around the average. Four times the data, a
# quarter of the average gap: from here on, when a lesson reports a gap of a few thousandths of
# a nat, that is the sample size talking, not the model.
#
# ## 7. The price of the log-determinant
#
# In 2D, `slogdet` is instant. But flows for images or audio have $d$ in the thousands, and
# `slogdet` factorises $W$ (an LU decomposition with row pivoting), which costs $O(d^3)$
# operations, at every training step; the gradient of $\log|\det W|$, which is $W^{-\top}$,
# costs as much again. **Triangular structure** removes this cost.
# The determinant of a triangular matrix is the product of its diagonal, and `nf.LULinear`
# parametrises
#
# $$W = L\,U, \qquad L \text{ lower triangular with ones on the diagonal}, \qquad
# U \text{ upper triangular with diagonal } e^{s_1}, \dots, e^{s_d},$$
#
# so that
#
# $$\log|\det W| = \underbrace{\log|\det L|}_{=\,0} + \log|\det U| = \sum_{i=1}^d s_i ,$$
#
# a sum of $d$ numbers: $O(d)$. As a bonus, $W$ is invertible for *every* value of the parameters
# ($\det W = e^{\sum_i s_i} > 0$), and inverting it takes two triangular solves, $O(d^2)$ per
# point. The price: $\det W$ is always positive, and not every matrix factorises as $LU$ without
# reordering its rows. The invertible $1 \times 1$ convolutions of Glow (Kingma & Dhariwal, 2018, a flow for
# images, lesson 8) use this parametrisation with a
# fixed permutation in front, $W = PLU$. For a Gaussian nothing is lost: any covariance is
# $R^\top R$ with $R$ upper triangular with a positive diagonal (its Cholesky factor), which is
# $L = I$, $U = R$.
#
# First, the two layers describe the same thing: an `LULinear` with arbitrary parameters and a
# `Linear` holding its product $W = LU$ give the same density, and $\sum_i s_i$ is the log-det
# that `slogdet` finds.

# %%
torch.manual_seed(1)
lu = nf.LULinear(2)
dense = nf.Linear(2)
with torch.no_grad():
    for parameter in lu.parameters():
        parameter.normal_(0.0, 0.5)  # an arbitrary LULinear
    dense.weight.copy_(lu.weight)  # W = L U
    dense.bias.copy_(lu.bias)
    L, U = lu.triangular_factors()
    points = 3 * torch.randn(1000, 2)
    same_density = torch.allclose(nf.Flow([lu]).log_prob(points), nf.Flow([dense]).log_prob(points), atol=1e-5)
    sum_s, slogdet = lu.log_diag.sum().item(), torch.linalg.slogdet(lu.weight).logabsdet.item()
print("L =", rounded(L), "  U =", rounded(U))
print(f"sum of s_i = {sum_s:.6f};  slogdet(LU) = {slogdet:.6f};  same density on 1000 points: {same_density}")
assert same_density and abs(sum_s - slogdet) < 1e-5

# %% [markdown]
# And training the LU version on our data reaches the same maximum-likelihood answer:

# %%
torch.manual_seed(0)
lu_flow = nf.Flow([nf.LULinear(2)])
nf.fit(lu_flow, data, steps=1500, batch_size=len(data), lr=0.1, snapshot_every=1500, bounds=bounds, progress=False)
lu_layer = lu_flow.layers[0]
with torch.no_grad():
    lu_W, lu_b = lu_layer.weight, lu_layer.bias
    lu_errors = ((lu_b - sample_mean).abs().max().item(), (lu_W.T @ lu_W - sample_cov).abs().max().item())
print(f"LULinear vs the closed-form answer: mean off by {lu_errors[0]:.1e}, covariance off by {lu_errors[1]:.1e}")
assert max(lu_errors) < 1e-3

# %% [markdown]
# Now the cost. We time `torch.linalg.slogdet` of a random dense $d \times d$ matrix against the
# log-det of an `LULinear(d)`, which is `log_diag.sum()`: the sum of a vector of $d$ numbers.
# We time that sum on a plain vector of $d$ numbers at every $d$, so that the curve measures
# one and the same operation from $d = 8$ to $d = 2^{20}$ (an actual `LULinear(2**20)` would
# need two $2^{20} \times 2^{20}$ matrices, 8 TB of memory). Each time is the best of five runs
# (as `timeit` recommends: the minimum is the least disturbed by whatever else the machine is
# doing). Your timings will differ from the ones stored in this notebook; their shape will not.

# %% mystnb={"image": {"alt": "Log-log plot of the time of the log-determinant against the dimension d: the dense slogdet grows steeply, close to d cubed, while the LU log-determinant, a sum of d numbers, stays thousands of times faster and grows slowly up to d = 2 to the 20."}}
def best_time(fn, budget=0.01, repeat=5):
    """Seconds per call of fn: the best of `repeat` runs, each of about `budget` seconds."""
    number = max(1, int(budget / max(timeit.timeit(fn, number=1), 1e-7)))
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


dims = [8, 16, 32, 64, 128, 256, 512, 1024]
big_dims = [2**12, 2**14, 2**16, 2**18, 2**20]
dense_time, lu_time = [], []
with torch.no_grad():
    for d in dims:
        W_d = torch.randn(d, d) / math.sqrt(d)
        dense_time.append(best_time(lambda: torch.linalg.slogdet(W_d).logabsdet))
    for d in dims + big_dims:
        s = torch.randn(d)  # what an LULinear(d) sums: its d log-scales
        lu_time.append(best_time(lambda: s.sum()))

ratio = dense_time[-1] / lu_time[len(dims) - 1]
slope = math.log(dense_time[-1] / dense_time[-2]) / math.log(2)

fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
ax.loglog(dims, dense_time, "o-", color=viz.TARGET_COLOR, label="slogdet(W), dense W")
ax.loglog(dims + big_dims, lu_time, "s-", color=viz.MODEL_COLOR, label="LU log-det: a sum of d numbers")
ax.loglog(dims[4:], [dense_time[-1] * (d / dims[-1]) ** 3 for d in dims[4:]], "k--", lw=1, label="∝ d³")
ax.loglog(big_dims, [lu_time[-1] * d / big_dims[-1] for d in big_dims], "k:", lw=1, label="∝ d")
ax.set(xlabel="dimension d", ylabel="seconds per log-det", title="the cost of the log-determinant")
ax.legend(fontsize=8)
plt.show()

print(f"at d = {dims[-1]}: slogdet {dense_time[-1] * 1e3:.1f} ms, LU log-det {lu_time[len(dims) - 1] * 1e6:.1f} µs,"
      f" about {ratio:,.0f} times faster")
print(f"slope of slogdet between d = 512 and 1024: {slope:.1f} (d³ would be 3)")
print(f"LU log-det at d = 2**20: {lu_time[-1] * 1e6:.0f} µs;  slogdet at d = 512: {dense_time[-2] * 1e6:.0f} µs")
small_growth = dense_time[dims.index(64)] / dense_time[0]
sum_spread = max(lu_time[:len(dims) + 1]) / min(lu_time[:len(dims) + 1])
print(f"from d = 8 to d = 64: slogdet {small_growth:.1f} times slower (d³ would say 512);"
      f"  the sum, from d = 8 to {big_dims[0]}: within a factor {sum_spread:.1f}")
assert ratio > 1000 and lu_time[-1] < dense_time[-2]  # "thousands of times"
assert small_growth < 64 and sum_spread < 5  # small d: fixed costs dominate both

# %% [markdown]
# At small $d$ the sum's curve is flat: a call into PyTorch costs a microsecond or two whatever
# it computes, and adding up a few thousand numbers is lost in that. `slogdet` costs more from
# the start (a factorisation has more fixed work) and grows a few times from $d = 8$ to
# $d = 64$, far less than the factor 512 that $d^3$ predicts, because those fixed costs still
# dominate. From $d \approx 100$ on, `slogdet` climbs towards the $d^3$ slope (the measured
# slope between 512 and 1024 is printed above: close to 3 on a quiet machine, lower when other
# programs compete for the processor while it is timed), and at
# $d = 1024$ it is thousands of times slower than the triangular log-det (the factor measured
# in this run is printed above). The $O(d)$ sum only
# starts to grow beyond $d \approx 10^4$, and even a million terms cost less than `slogdet` of a
# $512 \times 512$ matrix.
#
# The lesson for the rest of the course: design layers whose Jacobian is **triangular** (or
# otherwise structured) so that the log-det is a sum along a diagonal. Coupling and
# autoregressive flows (lessons 5 and 6) do exactly that, and add non-linearity on top, which a
# linear layer lacks: however many linear layers we stack, the result is one linear map, and
# its density is a Gaussian.
#
# ## 8. Exercises
#
# Each exercise has a cell for your answer: replace the `...` and run it, then run the cell
# below it, whose `check` says whether the answer is right and, if not, what is off. Stuck?
# Remove the `#` before `hint()` in the next cell; once you have tried, the one before
# `solution()` shows a worked answer.
#
# **Exercise 1.** A linear layer in 3D has the lower-triangular matrix
#
# $$L = \begin{pmatrix} 2 & 0 & 0 \\ 1 & -0.5 & 0 \\ 3 & 4 & 3 \end{pmatrix}.$$
#
# What is $\log|\det L|$? Work it out by hand first, then in code.

# %%
L = torch.tensor([[2.0, 0.0, 0.0], [1.0, -0.5, 0.0], [3.0, 4.0, 3.0]])
answer = ...  # a number

# %%
questions["triangular"].check(answer)

# %%
# questions["triangular"].hint()
# questions["triangular"].solution()

# %% [markdown]
# **Exercise 2.** A linear flow has $W = \begin{pmatrix} 1 & 2 \\ 0 & 1 \end{pmatrix}$ and
# $b = (1, -1)$. What is the covariance matrix of $x = zW + b$ for $z \sim \mathcal N(0, I)$?
# Give a $2 \times 2$ tensor. Mind the row vectors. `questions["covariance"].hint()` helps.

# %%
answer = ...  # a 2x2 tensor

# %%
questions["covariance"].check(answer)

# %%
# questions["covariance"].hint()
# questions["covariance"].solution()

# %% [markdown]
# **Exercise 3.** The dashed line in the loss plots is the entropy of a Gaussian. What is the
# entropy $H(x) = \mathbb E[-\log p_x(x)]$, in nats, of $x = zW + b$ with
# $W = \begin{pmatrix} 1.5 & 0.5 \\ 0 & 2 \end{pmatrix}$, $b = (5, 7)$ and
# $z \sim \mathcal N(0, I)$ in 2D? Put the change of variables formula inside the expectation.

# %%
answer = ...  # a number

# %%
questions["entropy"].check(answer)

# %%
# questions["entropy"].hint()
# questions["entropy"].solution()

# %% [markdown]
# ## Summary
#
# - A linear layer $x = zW + b$ has the constant Jacobian $W^\top$ and the log-det
#   $\log|\det W|$, computed with `torch.linalg.slogdet` (never `det().log()`, which under- and
#   overflows). On a standard normal base it gives exactly the Gaussians $\mathcal N(b, W^\top W)$.
# - Fitted by maximum likelihood (Adam, full batch, 1,500 steps at learning rate 0.1), it lands on the closed-form answer: $b$ equals the sample mean and
#   $W^\top W$ the biased sample covariance, to about $10^{-6}$. $W$ itself is only determined
#   up to a rotation.
# - A covariance must be positive semi-definite: the slip
#   $\begin{pmatrix} 2 & 7 \\ 7 & 1 \end{pmatrix}$ for $\begin{pmatrix} 2 & 0.7 \\ 0.7 & 1 \end{pmatrix}$
#   has a negative eigenvalue, and no linear flow (nor any distribution) has it as covariance.
# - Test NLL minus entropy is the KL divergence from the truth; `nf.gap` estimates it with less
#   noise: about 0.002 nats here, as the exact formula says. It is not zero because of the
#   finite training set, and it shrinks like $k/(2n)$.
# - The learned transformation moves every point along a straight line from $z$ to $zW + b$:
#   the grid stays a grid of parallelograms.
# - A dense log-det costs $O(d^3)$; an LU parametrisation with $U$'s diagonal $e^{s_i}$ gives
#   $\sum_i s_i$ in $O(d)$, is invertible by construction, and loses nothing for Gaussians.
#   Measured at $d = 1024$ the difference is a factor of thousands (printed in section 7).
#
# A linear flow can only make Gaussians, however deep. To bend the plane we need non-linear
# layers whose log-determinant stays cheap. The simplest ones are next.
#
# **Next:** [Lesson 4 · Planar and radial flows](04_planar_radial.ipynb)
