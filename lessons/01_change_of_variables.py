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
# # Lesson 1 · The change of variables formula
#
# A normalizing flow turns a simple random variable into a complicated one with an invertible
# map, and keeps track of what the map does to probability density. This lesson is about that
# bookkeeping: the **change of variables formula**. Everything later in the course is this one
# formula, applied to cleverer and cleverer maps.
#
# **What you will learn**
# - why a flow gives the *exact* likelihood of a data point, unlike generative adversarial
#   networks (GANs) and variational autoencoders (VAEs);
# - how to push a density through a map in 1D, and why the derivative of the map appears;
# - what goes wrong without that derivative (a "density" that no longer integrates to 1);
# - how a 2D linear map stretches area by $|\det A|$, and why log-determinants add along a chain.
#
# **Prerequisites**: Python and a little PyTorch (tensors), what a probability density is,
# derivatives, and the determinant of a 2x2 matrix. **Time**: about 25 minutes.

# %%
# Opened alone (on Colab, say), a lesson first installs the course's package; elsewhere this does nothing.
import importlib.util, subprocess, sys  # noqa: E401
if importlib.util.find_spec("nflesson") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "nflesson @ git+https://github.com/OWNER/REPO"], check=True)

# %%
import math

import matplotlib.pyplot as plt
import torch

import nflesson as nf
from nflesson import exercises, viz, widgets

torch.manual_seed(0)
plt.rcParams["figure.dpi"] = 80
questions = exercises.lesson(1)

# %% [markdown]
# ## 1. Flows in one paragraph
#
# A generative model learns a distribution $p(x)$ from samples. GANs can sample but cannot say
# how likely a point is; VAEs give only a lower bound on $\log p(x)$. A **normalizing flow** gives
# both sampling and the exact $\log p(x)$. It starts from a **base** variable $z$ with a simple
# density $p_z$ (here a standard normal) and applies an invertible map $f$:
#
# - **sampling** goes base $\to$ data: draw $z \sim p_z$, return $x = f(z)$;
# - **scoring** goes data $\to$ base: for a data point $x$, compute $z = f^{-1}(x)$ and use the
#   change of variables formula below.
#
# In `nflesson` every map is a `Bijector`: calling it maps base $\to$ data, `.inverse` maps
# data $\to$ base, and both return the log of the Jacobian factor we are about to meet.

# %% [markdown]
# ## 2. Pushing a density through a map
#
# Take $z \sim \mathcal N(0, 1)$ and $x = f(z)$ with $f$ increasing. The probability that $z$
# lands in a small interval $[z, z + dz]$ is $p_z(z)\,dz$; the map sends that interval to
# $[x, x + dx]$ with $dx = f'(z)\,dz$, and the probability is the same. So
# $p_x(x)\,|dx| = p_z(z)\,|dz|$, that is
#
# $$p_x(x) = p_z\big(f^{-1}(x)\big)\,\left|\frac{d f^{-1}}{dx}(x)\right| = \frac{p_z(z)}{|f'(z)|}, \qquad z = f^{-1}(x).$$
#
# Where the map stretches ($|f'| > 1$) the density gets thinner; where it squeezes, denser.
#
# **A shift, $x = z + 2$.** Here $f' = 1$: the density keeps its shape and moves to 2. The three
# panels below show the base density, the map, and the pushed density from the formula (orange)
# over a histogram of 20,000 pushed samples (blue).

# %% mystnb={"image": {"alt": "Three panels for the shift x = z + 2: the standard normal base density; the map, a straight line of slope 1 raised by 2; and the pushed density, the same bell curve centred at 2, with the formula's curve lying on a histogram of 20,000 pushed samples."}}
shift = widgets.one_d_map("affine", scale=1.0, shift=2.0)  # x = 1 * z + 2
viz.plot_1d_map(shift)
plt.show()

x = torch.linspace(-2, 6, 9).unsqueeze(-1)
pushed = shift.log_prob(x).exp()
expected = torch.distributions.Normal(2.0, 1.0).log_prob(x[:, 0]).exp()
assert torch.allclose(pushed, expected, atol=1e-6)
print("the pushed density is N(2, 1): max difference", (pushed - expected).abs().max().item())

# %% [markdown]
# **The exponential, $x = e^z$.** Now $f'(z) = e^z = x$, so $p_x(x) = p_z(\log x)/x$: the
# **log-normal** density. The map squeezes all negative $z$ into $(0, 1)$ and stretches the
# positive ones, which piles the density up near 0 and gives it a long right tail.

# %% mystnb={"image": {"alt": "Three panels for x = exp(z): the standard normal base density; the map, an exponential curve; and the pushed log-normal density on 0 to 8, piled up near 0 with a long right tail, the formula's curve following a histogram of pushed samples."}}
exp_map = nf.Flow([nf.Exp()], dim=1)
viz.plot_1d_map(exp_map, x_range=(0, 8))
plt.show()

x = torch.tensor([[0.25], [1.0], [2.0], [5.0]])
formula = torch.distributions.Normal(0.0, 1.0).log_prob(x.log()).exp() / x  # p_z(log x) / x
lognormal = torch.distributions.LogNormal(0.0, 1.0).log_prob(x).exp()
assert torch.allclose(exp_map.log_prob(x).exp(), lognormal[:, 0], atol=1e-6)
assert torch.allclose(formula, lognormal, atol=1e-6)
print("p_x at x = 0.25, 1, 2, 5:", [round(v, 4) for v in lognormal[:, 0].tolist()])

# %% [markdown]
# **A scaling and a sigmoid.** $x = 3z$ spreads the density three times wider and three times
# lower ($f' = 3$): the top row. In the bottom row, $x = \sigma(1.5z)$ with the sigmoid
# $\sigma(t) = 1/(1 + e^{-t})$ squeezes the whole real line into $(0, 1)$; its derivative is
# $f'(z) = 1.5\,x(1 - x)$. With this factor 1.5 the pushed density comes out nearly flat over
# most of $(0, 1)$, and it falls to 0 at both ends, where the tails of the normal are squeezed.

# %% mystnb={"image": {"alt": "Two rows of three panels. Top, x = 3z: the bell curve becomes three times wider and three times lower. Bottom, x = sigmoid(1.5z): an S-shaped map squeezes the real line into (0, 1), and the pushed density is nearly flat over most of (0, 1) and falls to 0 at both ends."}}
fig, axes = plt.subplots(2, 3, figsize=(11, 6), layout="constrained")
viz.plot_1d_map(widgets.one_d_map("affine", scale=3.0, shift=0.0), axes=axes[0])
viz.plot_1d_map(widgets.one_d_map("sigmoid", scale=1.5, shift=0.0), axes=axes[1], x_range=(0, 1))
for row, name in zip(axes, ("x = 3z", r"x = \sigma(1.5z)")):
    row[1].set_title(f"the map ${name}$")
    row[2].set_title(f"pushed density of ${name}$")
plt.show()

# %% [markdown]
# ## 3. The Jacobian factor is what keeps the total probability at 1
#
# A density must integrate to 1. Let us integrate the pushed densities numerically, with the
# factor $1/|f'(z)|$ and without it. Without it, the scaling by 3 gives a total of 3 (the curve
# is as tall as before but three times wider), and the exponential gives
# $\int p_z(\log x)\,dx = \mathbb E[e^z] = e^{1/2} \approx 1.649$.

# %%
def total_mass(flow, lo, hi, jacobian=True, n=400_001):
    """Trapezoid rule for the integral of the pushed density over [lo, hi]."""
    x = torch.linspace(lo, hi, n, dtype=torch.float64)[1:-1].unsqueeze(-1)
    z, log_det = flow.double().inverse(x)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z[:, 0]) + (log_det if jacobian else 0)
    return torch.trapezoid(log_p.exp(), x[:, 0]).item()


maps = {
    "x = 3z": (widgets.one_d_map("affine", 3.0, 0.0), -30, 30),
    "x = exp(z)": (nf.Flow([nf.Exp()], dim=1), 0, 3000),
    "x = sigmoid(1.5 z)": (widgets.one_d_map("sigmoid", 1.5, 0.0), 0, 1),
}
print(f"{'map':<20}{'with Jacobian':>15}{'without':>10}")
masses = {}
for name, (flow, lo, hi) in maps.items():
    masses[name] = (total_mass(flow, lo, hi), total_mass(flow, lo, hi, jacobian=False))
    print(f"{name:<20}{masses[name][0]:>15.4f}{masses[name][1]:>10.4f}")

assert all(abs(with_jacobian - 1) < 1e-3 for with_jacobian, _ in masses.values())
assert abs(masses["x = 3z"][1] - 3) < 1e-3
assert abs(masses["x = exp(z)"][1] - math.exp(0.5)) < 1e-3

# %% [markdown]
# The dashed curve below is the "density" without the Jacobian factor for $x = e^z$: a normal
# bell read off at $\log x$. It is in the wrong place and has the wrong area; the histogram of
# actual samples follows the orange curve.

# %% mystnb={"image": {"alt": "The exponential map again, with an extra dashed curve: the density without the Jacobian factor, a normal bell read off at log x, sits in the wrong place, while the histogram of samples follows the correct log-normal curve."}}
viz.plot_1d_map(exp_map, x_range=(0, 8), without_jacobian=True)
plt.show()

# %% [markdown]
# ### Try it
# Pick a map, move its scale $a$ and shift $b$ (the map is $x = f(az + b)$), and tick
# *drop the Jacobian* to see the wrong curve. Watch how the histogram always agrees with the
# formula that keeps the factor. (The sliders need a running kernel; on a static page you see
# the first picture only.)

# %% mystnb={"image": {"alt": "Static picture of the change-of-variables explorer for x = exp(z): base density, the map, and the pushed density over a histogram of pushed samples; sliders for the scale, the shift and dropping the Jacobian need a running kernel."}}
widgets.explore_change_of_variables("exp")

# %% [markdown]
# ## 4. Two dimensions: determinants measure how area changes
#
# In $d$ dimensions the derivative becomes the Jacobian matrix $J_f(z) = \partial f / \partial z$
# and the stretch factor becomes the absolute value of its determinant:
#
# $$p_x(x) = p_z(z)\,\big|\det J_f(z)\big|^{-1}, \qquad z = f^{-1}(x).$$
#
# For a linear map $x = zA$ (row vectors, as in PyTorch) each output is
# $x_j = \sum_i z_i A_{ij}$, so $\partial x_j / \partial z_i = A_{ij}$: the Jacobian is the
# transpose $A^\top$, the same at every point, and $\det A^\top = \det A$. The unit square
# becomes a parallelogram of area $|\det A|$, and every small patch of the plane is scaled by the
# same factor. An example: **scale by 2 and rotate by 45°**, so $A = 2R_{45°}$ with $\det A = 4$.

# %% mystnb={"image": {"alt": "Three panels for x = zA with A = 2 times a 45-degree rotation: the square grid of [-1, 1] squared turned into a rotated square twice as large; the base density N(0, I) as a round bright spot; and the pushed density, round again but two times wider each way and four times lower."}}
angle = torch.tensor(math.pi / 4)
rotation = torch.tensor([[torch.cos(angle), torch.sin(angle)], [-torch.sin(angle), torch.cos(angle)]])
A = 2 * rotation
print("A =", [[round(v, 4) for v in row] for row in A.tolist()], f" det A = {torch.linalg.det(A).item():.4f}")
jacobian = torch.autograd.functional.jacobian(lambda v: v @ A, torch.tensor([0.3, -1.2]))
assert torch.allclose(jacobian, A.T)  # row vectors: the Jacobian of z -> zA is the transpose of A

linear = nf.Linear(2)
with torch.no_grad():
    linear.weight.copy_(A)
flow = nf.Flow([linear])

bounds = ((-5, 5), (-5, 5))
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
viz.plot_warped_grid(lambda p: p @ A, ((-1, 1), (-1, 1)), axes[0], lines=9, title="the grid of [-1, 1]² under x = zA")
axes[0].set(xlim=(-3.5, 3.5), ylim=(-3.5, 3.5))
base_peak = 1 / (2 * math.pi)  # the same colour scale for both panels
viz.plot_density(nf.Flow([nf.Affine(2)]).log_prob, bounds, axes[1], title="base density N(0, I)", vmax=base_peak)
viz.plot_density(flow.log_prob, bounds, axes[2], title="pushed: 2x wider each way, 4x lower", vmax=base_peak)
plt.show()

# %% [markdown]
# The pushed variable is Gaussian with covariance $A^\top A$ (here $4I$: the rotation does not
# change an isotropic Gaussian, only the scale does). Our flow's density agrees with
# `torch.distributions.MultivariateNormal` to float precision, and the peak is exactly
# $|\det A| = 4$ times lower than the base's:

# %%
points = torch.randn(1000, 2) * 3
gaussian = torch.distributions.MultivariateNormal(torch.zeros(2), covariance_matrix=A.T @ A)
assert torch.allclose(flow.log_prob(points), gaussian.log_prob(points), atol=1e-5)
peak_ratio = (nf.Flow([nf.Affine(2)]).log_prob(torch.zeros(1, 2)) - flow.log_prob(torch.zeros(1, 2))).exp().item()
assert abs(peak_ratio - 4) < 1e-5
print("base peak / pushed peak =", round(peak_ratio, 6))

# %% [markdown]
# ### Try it
# Move the entries of $A$. The orange parallelogram is the image of the unit square, and its area
# is printed in the title. Make $\det A = 0$ (for example equal rows): the plane collapses onto a
# line, the map is no longer invertible, and no density survives. That is why every layer of a
# flow must stay invertible.

# %% mystnb={"image": {"alt": "Static picture of the linear-map explorer: a grey grid under the map, the unit square and its image, a parallelogram whose area, the absolute determinant of A, is in the title; sliders for the entries of A need a running kernel."}}
widgets.explore_linear_map()

# %% [markdown]
# ## 5. Chains of maps: log-determinants add
#
# A flow is a chain $f = f_K \circ \dots \circ f_1$. By the chain rule the Jacobian of the chain
# is the product of the Jacobians, and determinants multiply, so in logs they **add**:
#
# $$\log p_x(x) = \log p_z(z_0) - \sum_{k=1}^{K} \log\big|\det J_{f_k}(z_{k-1})\big|, \qquad z_k = f_k(z_{k-1}).$$
#
# Working in logs is not only tidier: a product of many small factors underflows in float32,
# a sum of their logs does not. Given data $x_1, \dots, x_n$, training a flow means maximising
# the log-likelihood, i.e. minimising the **negative log-likelihood**
#
# $$\text{NLL} = -\frac1n \sum_{i=1}^n \Big[\log p_z\big(f^{-1}(x_i)\big) + \log\big|\det J_{f^{-1}}(x_i)\big|\Big].$$
#
# `Flow.log_prob` does exactly this: it runs the layers' inverses from the data side and sums
# their log-determinants. Let us check the sum against the autograd Jacobian of a two-layer chain,
# an affine map followed by the exponential:

# %%
affine = nf.Affine(2)
with torch.no_grad():
    affine.log_scale.copy_(torch.tensor([0.5, -0.3]))
    affine.shift.copy_(torch.tensor([0.2, 1.0]))
chain = nf.Flow([affine, nf.Exp()])

z = torch.tensor([[0.3, -0.7]])
x, log_det = chain(z)
jacobian = torch.autograd.functional.jacobian(lambda v: chain(v.unsqueeze(0))[0][0], z[0])
from_autograd = torch.linalg.slogdet(jacobian).logabsdet
per_layer = [affine(z)[1].item(), nf.Exp()(affine(z)[0])[1].item()]
print("log|det| per layer:", [round(v, 5) for v in per_layer], " sum:", round(sum(per_layer), 5))
print("log|det| of the autograd Jacobian of the chain:", round(from_autograd.item(), 5))
assert abs(log_det.item() - from_autograd.item()) < 1e-5 and abs(sum(per_layer) - log_det.item()) < 1e-5

# %% [markdown]
# ## 6. Exercises
#
# Each exercise has a cell for your answer: replace the `...` and run it, then run the cell
# below it, whose `check` says whether the answer is right and, if not, what is off. Stuck?
# Remove the `#` before `hint()` in the next cell; once you have tried, the one before
# `solution()` shows a worked answer.
#
# **Exercise 1.** Let $x = e^z$ with $z \sim \mathcal N(0, 1)$. What is the density $p_x(3)$?

# %%
answer = ...  # a number

# %%
questions["lognormal"].check(answer)

# %%
# questions["lognormal"].hint()
# questions["lognormal"].solution()

# %% [markdown]
# **Exercise 2.** A linear map $x = zA$ first scales the two coordinates by 3 and by 0.5, then
# rotates the plane by 30°. What is $\log|\det A|$ (base $\to$ data direction)?
# `questions["rotation"].hint()` helps.

# %%
answer = ...  # a number

# %%
questions["rotation"].check(answer)

# %%
# questions["rotation"].hint()
# questions["rotation"].solution()

# %% [markdown]
# **Exercise 3.** Write the density of $x = \mathrm{sigmoid}(z)$ as a function `answer(x)` that
# takes a tensor of values in $(0, 1)$ and returns $p_x$ at each of them.

# %%
answer = ...  # a function of a tensor x

# %%
questions["sigmoid"].check(answer)

# %%
# questions["sigmoid"].hint()
# questions["sigmoid"].solution()

# %% [markdown]
# ## Summary
#
# - A flow is a base density pushed through an invertible map: sample base $\to$ data, score
#   data $\to$ base.
# - Change of variables: $p_x(x) = p_z(z)\,|\det J_f(z)|^{-1}$. The determinant measures how the
#   map changes volume; without it the result is not a density (it integrated to 3 and to 1.649
#   above instead of 1).
# - In 1D the factor is $|f'(z)|$; $x = e^z$ gives the log-normal $p_z(\log x)/x$.
# - Along a chain of maps the log-determinants add, and the NLL is what we minimise to train.
#
# The two requirements on a layer are now clear: it must be **invertible**, and its
# **log-determinant must be cheap**. Next: the simplest learnable layer, and what it can and
# cannot do.
#
# **Next:** [Lesson 2 · A 1D affine flow](02_affine_flow.ipynb)
