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
# # Lesson 11 · Flows inside a VAE
#
# A variational autoencoder (VAE) explains each image $x$ by a few latent numbers $z$: a prior
# $p(z) = \mathcal N(0, I)$, a decoder $p(x \mid z)$, and an encoder that guesses, for every $x$
# at once, where its $z$ lies, the approximate posterior $q(z \mid x)$. That guess is usually a
# diagonal Gaussian. Planar flows (Rezende & Mohamed, 2015) and inverse autoregressive flows
# (Kingma et al., 2016) were invented to make it flexible, and this is where they were first
# used. Lessons 4 and 6 fitted flows to one fixed energy; here the energy
# $-\log p(x, z)$ changes with every image, and one encoder must serve them all. With a latent
# space of only two dimensions we can compute the **exact** posterior of every image on a grid,
# and so see, in nats, what a flow posterior gains and what it cannot.
#
# **What you will learn**
# - the evidence lower bound (ELBO), why $\log p(x) - \mathrm{ELBO}(x)$ is exactly the KL
#   divergence of $q(z \mid x)$ from the true posterior, and the importance-weighted bound;
# - how a flow enters the encoder: planar layers whose parameters the encoder outputs, and IAF
#   layers that read the encoder's output as their context;
# - four VAEs on binarised digits, trained alike, compared by their ELBO and by an
#   importance-weighted estimate of $\log p(x)$, in nats and bits per dimension;
# - the exact posterior of a few test digits next to each $q(z \mid x)$, and the KL by
#   quadrature; the **amortization gap**: what the encoder loses by serving all images at once;
# - samples, reconstructions and the latent space of a VAE.
#
# **Prerequisites**: [lesson 4](04_planar_radial.ipynb) (planar flows, variational inference),
# [lesson 6](06_autoregressive_flows.ipynb) (IAF), [lesson 8](08_digits.ipynb) (digits, bits per
# dimension) and [lesson 10](10_conditional_flows.ipynb) (conditional flows).
# **Time**: about 40 minutes.

# %%
# Opened alone (on Colab, say), a lesson first installs the course's package; elsewhere this does nothing.
import importlib.util, subprocess, sys  # noqa: E401
if importlib.util.find_spec("nflesson") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "nflesson @ git+https://github.com/OWNER/REPO"], check=True)

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Image

import nflesson as nf
from nflesson import exercises, viz, widgets

torch.manual_seed(0)
torch.set_num_threads(1)  # small networks: one thread is faster than two that wait for each other
plt.rcParams["figure.dpi"] = 80
questions = exercises.lesson(11)

# %% [markdown]
# ## 1. The model, its bound, and the data
#
# For any $q(z \mid x)$, Bayes' rule $p(z \mid x) = p(x, z) / p(x)$ gives, after taking the
# expectation under $q$ of $\log p(x) = \log p(x, z) - \log p(z \mid x)$,
#
# $$\log p(x) = \underbrace{\mathbb E_{q}\big[\log p(x, z) - \log q(z \mid x)\big]}_{\mathrm{ELBO}(x)}
# + \mathrm{KL}\big(q(z \mid x) \,\|\, p(z \mid x)\big).$$
#
# The KL is never negative, so the ELBO is a lower bound on $\log p(x)$, and maximising it over
# the encoder and the decoder together fits the model *and* pulls $q$ towards the true posterior.
# The ELBO is what lesson 4's reverse KL was, with $\log p(x, z)$ as the unnormalised density:
# a flow $q$ is scored by `sample_and_log_prob`, one reparametrised draw at a time. With $K$
# draws $z_k \sim q(z \mid x)$ and weights $w_k = p(x, z_k) / q(z_k \mid x)$, the
# **importance-weighted bound** (Burda et al., 2016)
#
# $$\mathcal L_K(x) = \mathbb E \log \frac1K \sum_{k=1}^K w_k$$
#
# equals the ELBO at $K = 1$, grows with $K$ and tends to $\log p(x)$: with $K$ = 500 it is the
# estimate of the likelihood we report (`nf.importance_weighted_bound`).
#
# **The data and the likelihood.** We binarise lesson 8's digits (a pixel is on when its level
# is 8 or more) and give the decoder one Bernoulli probability per pixel,
# $\log p(x \mid z) = \sum_i x_i \log s_i + (1 - x_i) \log(1 - s_i)$ with $s = \sigma(\text{decoder}(z))$.
# This is the setting in which planar flows and IAF were introduced (binarised MNIST): the
# likelihood is a true probability of discrete data with no dequantization, and with 64 binary
# pixels, $-\log_2 p(x) / 64$ is in bits per dimension, at most 1 (sending each pixel raw). A
# 17-level categorical decoder would make the numbers comparable with lesson 8's flows, at 17 times
# the decoder's outputs; binary pixels keep the lesson on the posterior, which is its subject.
# Lesson 8's bits per dimension are of 17-level pixels and are not comparable with these; the
# yardstick here is the model that gives each pixel its own training frequency, independently.

# %% mystnb={"image": {"alt": "Two rows of 12 test digits: the 17-level grey-scale images, and below them the same digits binarised to black and white pixels."}}
digits = nf.digits.digits()
train, test = (digits.train >= 8).float(), (digits.test >= 8).float()
frequency = train.mean(0).clamp(1e-3, 1 - 1e-3)
independent = -(test * frequency.log() + (1 - test) * (1 - frequency).log()).sum(1).mean().item()
print(f"{len(train)} training and {len(test)} test digits of 64 binary pixels, {train.mean():.0%} of them on; "
      f"independent pixels: {independent:.2f} nats per image, {nf.bits_per_dim(independent):.3f} bits/dim")
fig, ax = plt.subplots(figsize=(7, 1.6), layout="constrained")
viz.plot_images(torch.stack([digits.test[:12], 16 * test[:12]]), ax, row_labels=["levels", "binary"],
                title="test digits, then binarised")
plt.show()

# %% [markdown]
# ## 2. Four posteriors for one VAE
#
# The encoder maps $x$ to a context $h(x)$ of 32 numbers, and $q(z \mid x)$ is a conditional
# nflesson `Flow` reading it (lesson 10's `context=`): its first layer, `nf.AmortizedAffine`,
# turns the base $\varepsilon \sim \mathcal N(0, I)$ into the encoder's Gaussian
# $\mu(h) + \sigma(h)\,\varepsilon$; flow layers follow. Two ways for the flow to depend on $x$:
#
# - **planar** layers whose $(w, u, b)$ are outputs of the encoder, a linear head on $h$, as
#   Rezende & Mohamed did (`nf.AmortizedPlanar`, with lesson 4's $\hat u$ keeping each layer
#   invertible for every $x$);
# - **IAF** layers, lesson 6's, whose MADE reads $h$ next to $z$ (`nf.flows.iaf(2, context=32)`).
#
# Both are conditional flows in lesson 10's sense, so one API serves: `sample_and_log_prob(n,
# context=h)` for training, `log_prob(z, context=h)` for the grid, the transformation GIF for one
# image. We take this road rather than wiring the parameters by hand because every nflesson
# tool then works on $q(z \mid x)$ unchanged. `nf.vae.posterior` builds the four: the Gaussian
# alone, planar with $K = 2$ and $K = 8$ layers, and IAF with 2 layers. The encoder and the
# decoder are the same small networks for all four, built from the same seed and trained for
# the same 500 steps on the same minibatches; the training loop is four lines.

# %%
LATENT, CONTEXT, STEPS = 2, 32, 500
POSTERIORS = {"Gaussian": ("gaussian", 0), "planar K=2": ("planar", 2), "planar K=8": ("planar", 8),
              "IAF K=2": ("iaf", 2)}


def make_vae(kind, layers, seed):
    torch.manual_seed(seed)
    encoder = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.Tanh(), torch.nn.Linear(128, CONTEXT),
                                  torch.nn.Tanh())
    decoder = torch.nn.Sequential(torch.nn.Linear(LATENT, 128), torch.nn.Tanh(), torch.nn.Linear(128, 128),
                                  torch.nn.Tanh(), torch.nn.Linear(128, 64))
    return nf.VAE(encoder, nf.vae.posterior(kind, CONTEXT, layers, hidden=64), decoder)


def train_vae(kind, layers, seed=0, steps=STEPS):
    model = make_vae(kind, layers, seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=6e-3)
    batches = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        loss = -model.elbo(train[torch.randint(len(train), (128,), generator=batches)]).mean()  # one draw per image
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return model.eval(), losses


models, curves, seconds = {}, {}, {}
for name, (kind, layers) in POSTERIORS.items():
    start = time.process_time()
    models[name], curves[name] = train_vae(kind, layers)
    seconds[name] = time.process_time() - start
print("trained for", STEPS, "steps each:", ", ".join(f"{n} {s:.1f} s" for n, s in seconds.items()))

# %% [markdown]
# ## 3. The bounds on the test digits
#
# For each VAE: the ELBO (its mean over 100 draws per image) and the importance-weighted
# estimate $\mathcal L_{500}$ of $\log p(x)$, averaged over the 500 test digits, in nats per image
# and bits per dimension. The difference of the two is the average KL of $q(z \mid x)$ from the
# true posterior, up to the little that 500 draws leave.

# %% mystnb={"image": {"alt": "Training curves of the negative ELBO in nats, averaged over 20 steps, for the four VAEs with Gaussian, planar K = 2, planar K = 8 and IAF K = 2 posteriors, trained with the same seed and batches; the curves fall together and end close to one another."}}
results = {}
for name, model in models.items():
    torch.manual_seed(1)
    with torch.no_grad():
        elbo = model.elbo(test, 100).mean().item()
        iw = model.importance_weighted(test, 500).mean().item()
    results[name] = {"elbo": elbo, "iw": iw}
print(f"{'posterior':<12}{'ELBO':>9}{'log p(x) (IW, K = 500)':>25}{'bits/dim (IW)':>15}{'gap':>7}")
for name, r in results.items():
    print(f"{name:<12}{r['elbo']:>9.2f}{r['iw']:>25.2f}{nf.bits_per_dim(-r['iw']):>15.3f}{r['iw'] - r['elbo']:>7.2f}")
print(f"{'independent pixels':<37}{-independent:>9.2f}{nf.bits_per_dim(independent):>15.3f}")
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
for (name, losses), color in zip(curves.items(), viz.CATEGORICAL):  # colour-blind safe
    ax.plot(torch.tensor(losses).reshape(-1, 20).mean(1), color=color, label=name)
ax.set(xlabel="step / 20", ylabel="-ELBO (nats, training minibatches)", title="training, same seed, same batches")
ax.legend(fontsize=8)
plt.show()
assert all(r["iw"] > r["elbo"] for r in results.values())
assert all(r["iw"] > -independent + 5 for r in results.values())
flow_names = [n for n in results if n != "Gaussian"]
iws = [r["iw"] for r in results.values()]
gaps = {n: r["iw"] - r["elbo"] for n, r in results.items()}
assert all(-21 < r["elbo"] < -19.5 and -20 < r["iw"] < -19 for r in results.values())
assert max(iws) - min(iws) < 0.4 and all(0.7 < g < 1.3 for g in gaps.values())
assert max(results[n]["elbo"] for n in flow_names) < results["Gaussian"]["elbo"] + 0.05
assert min(gaps[n] for n in flow_names) > gaps["Gaussian"] + 0.03
assert all(0.43 < nf.bits_per_dim(-r["iw"]) < 0.45 for r in results.values()) and 0.56 < nf.bits_per_dim(independent) < 0.58

# %% [markdown]
# The flow posteriors do not win here. None of the three flows improves on the Gaussian's ELBO
# (-20.31 nats per image; the flows -20.45 to -20.48), and the importance-weighted estimates of
# $\log p(x)$ lie within 0.2 nats of each other, from -19.52 to -19.33: all four VAEs need about
# 0.44 bits per pixel, where independent pixels need 0.568. Each VAE was trained from one seed;
# differences of a tenth or two of a nat are of the size another seed could change, so read
# the four as tied. The table also says why a richer posterior cannot gain much: the gap
# $\log p(x) - \mathrm{ELBO}$, the average KL of $q$ from the true posterior, is between 0.87 and
# 1.12 nats per image, so that is all any family could win, and it is no smaller for the flows
# than for the Gaussian. Every VAE has its own decoder, and the ELBO trains the decoder to make
# its posteriors easy for its own $q$; a Gaussian $q$ gets a decoder with near-Gaussian
# posteriors. To see what $q$ gets wrong, look at the truth.
#
# ## 4. The exact posterior, image by image
#
# With two latent dimensions, $p(z \mid x) = p(x, z) / p(x)$ is a 2D density we can tabulate:
# `nf.grid_posterior` evaluates $\log p(x, z)$ on a grid of cell centres, normalises by the
# midpoint rule (which also gives $\log p(x)$ itself), then zooms onto the box where the
# posterior lives; `nf.kl_on_grid` gives $\mathrm{KL}(q \,\|\, p)$ by the same quadrature. Below,
# for three test digits, each VAE's exact posterior (filled) and its $q(z \mid x)$ (contours);
# above each panel, the KL in nats. Each panel zooms onto its own posterior: the four VAEs
# learned four different latent spaces, so one digit sits in a different place in each.

# %% mystnb={"image": {"alt": "A grid with one row per test digit (digits 3, 11 and 25): the binarised digit, then for each of the four posteriors (Gaussian, planar K = 2, planar K = 8, IAF K = 2) the exact posterior over the two latent variables as a viridis density with the approximate posterior's contour lines on top, titled with KL(q || p) in nats; the Gaussian's elliptical contours miss the bent or skewed shapes that the flows follow more closely."}}
chosen = [3, 11, 25]


def truth_and_kl(model, x, context=None):
    grid = nf.grid_posterior(lambda z: model.log_joint(x, z), ((-5, 5), (-5, 5)), 120)
    with torch.no_grad():
        h = model.encoder(x[None])[0] if context is None else context
        kl = nf.kl_on_grid(lambda z: model.posterior.log_prob(z, context=h), grid)
    return grid, kl, h


start = time.process_time()
table = {name: [truth_and_kl(model, test[j]) for j in chosen] for name, model in models.items()}
fig, axes = plt.subplots(len(chosen), len(models) + 1, figsize=(12, 7.6), layout="constrained")
for row, j in enumerate(chosen):
    viz.plot_images(16 * test[j][None, None], axes[row, 0], title=f"test digit {j}")
    for col, name in enumerate(models, start=1):
        grid, kl, h = table[name][row]
        (x0, x1), (y0, y1) = grid.bounds
        ax = axes[row, col]
        ax.imshow(grid.image().T, origin="lower", extent=(x0, x1, y0, y1), cmap=viz.DENSITY_CMAP, aspect="auto")
        with torch.no_grad():
            q = models[name].posterior.log_prob(grid.points, context=h).exp().reshape(grid.image().shape)
        ax.contour(*grid.axes, q.T, levels=q.max().item() * torch.tensor([0.05, 0.3, 0.7]), colors=viz.MODEL_COLOR,
                   linewidths=1)
        ax.set_title(f"{name}: KL {kl.nats:.3f} nats", fontsize=9)
        ax.tick_params(labelsize=7)
plt.show()
grid_seconds = time.process_time() - start
for name in models:
    print(f"{name:<12} KL(q || p) by quadrature: " + ", ".join(f"{kl.nats:.3f}" for _, kl, _ in table[name])
          + f" nats (q's mass on the grid: {min(kl.mass for _, kl, _ in table[name]):.4f} or more)")
print(f"grids in {grid_seconds:.1f} s")
assert all(kl.nats > -1e-3 and kl.mass > 0.99 for rows in table.values() for _, kl, _ in rows)
mean_kl = {name: sum(kl.nats for _, kl, _ in rows) / len(rows) for name, rows in table.items()}
print("mean KL over the three digits:", ", ".join(f"{n} {k:.2f}" for n, k in mean_kl.items()), "nats")
assert mean_kl["Gaussian"] > mean_kl["IAF K=2"] + 0.1 and mean_kl["Gaussian"] > max(mean_kl[n] for n in flow_names)
assert table["Gaussian"][1][1].nats < min(table[n][1][1].nats for n in flow_names) - 0.1
assert all(0.15 < kl.nats < 1.3 for rows in table.values() for _, kl, _ in rows)

# %% [markdown]
# The exact posteriors are single, nearly elliptical blobs, a little skewed or bent at most: there
# is not much for a flow to fix. On these three digits the flows' $q$ are on average closer to
# the truth than the Gaussian's (0.68 nats for the Gaussian, 0.62 and 0.52 for planar $K$ = 2 and
# 8, 0.44 for IAF), but not digit by digit: on digit 11 the Gaussian is the closest of the
# four. And three digits are not the test set: over all 500, the table of section 3 gave the
# Gaussian the smallest average KL.
# %% [markdown]
# The quadrature agrees with the bounds: for each digit, the exact $\log p(x)$ from the grid minus
# the ELBO (a Monte Carlo mean over 10,000 draws) is the KL, which we check for the IAF VAE.

# %%
model = models["IAF K=2"]
torch.manual_seed(2)
with torch.no_grad():
    elbos = model.elbo(test[chosen], 10_000)
for (grid, kl, _), elbo in zip(table["IAF K=2"], elbos):
    print(f"log p(x) by quadrature {grid.log_evidence:.3f}, ELBO {elbo:.3f}: difference "
          f"{grid.log_evidence - elbo:.3f}, KL by quadrature {kl.nats:.3f} nats")
    assert abs(grid.log_evidence - elbo - kl.nats) < 0.05

# %% [markdown]
# ## 5. The amortization gap
#
# The KL above has two causes: the family of $q$ may not hold the posterior (the **approximation
# gap**), and the encoder, one network for all images, may not give this image the best member of
# the family (the **amortization gap**, Cremer et al., 2018). To separate them, free the
# encoder's output for one image alone: start from its $h(x)$ and maximise that image's ELBO over
# $h$ (the decoder fixed), 100 steps of Adam with 128 draws each. What the KL loses is the
# amortization gap; what remains is, up to the reach of $h$, the approximation gap.

# %%
def optimise_alone(model, x, steps=100):
    """The context h that maximises ELBO(x) for this one image, starting from the encoder's h(x)."""
    h = model.encoder(x[None]).detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([h], lr=0.05)
    for _ in range(steps):
        z, log_q = model.posterior.sample_and_log_prob(128, context=h[0])
        loss = -(model.log_joint(x, z) - log_q).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return h.detach()[0]


start = time.process_time()
torch.manual_seed(3)
amortization = {}
for name, model in models.items():
    for p in model.parameters():
        p.requires_grad_(False)
    gaps = []
    for (grid, kl, _), j in zip(table[name], chosen):
        h_alone = optimise_alone(model, test[j])
        alone = nf.kl_on_grid(lambda z: model.posterior.log_prob(z, context=h_alone), grid)
        gaps.append((kl.nats, alone.nats))
    amortization[name] = gaps
    print(f"{name:<12} KL with the encoder's q -> optimised for each image alone: "
          + ", ".join(f"{a:.3f} -> {b:.3f}" for a, b in gaps)
          + f"; amortization gap {sum(a - b for a, b in gaps) / len(gaps):.3f} nats on average")
print(f"optimised in {time.process_time() - start:.1f} s")
assert all(b < a + 0.02 for gaps in amortization.values() for a, b in gaps)
amortized = {n: sum(a - b for a, b in g) / len(g) for n, g in amortization.items()}
alone = {n: sum(b for _, b in g) / len(g) for n, g in amortization.items()}
print("KL left when optimised alone, on average:", ", ".join(f"{n} {k:.2f}" for n, k in alone.items()), "nats")
assert all(0.2 < a < 0.7 and amortized[n] > alone[n] for n, a in amortized.items())
assert alone["Gaussian"] > max(alone[n] for n in flow_names) + 0.03 and max(alone.values()) < 0.25

# %% [markdown]
# Freed for one image, every posterior gets much closer to the truth: the Gaussian to 0.19 nats
# on average, the flows to between 0.06 and 0.13, all below the Gaussian. That remainder is the
# approximation gap, and there the flows do what they were made for: a richer family holds a
# member nearer each posterior, planar $K$ = 8 the nearest. But through the encoder every
# posterior loses more than that, between 0.31 and 0.52 nats on average: in this small VAE most
# of the KL is the amortization gap, not the shape of $q$. A flow makes the family richer; it
# does not make the encoder better at picking the family's best member for each image, which is
# why the flows' advantage on the three digits is small and, over the whole test set, gone.
# %% [markdown]
# ## 6. What the VAE has learned: samples, reconstructions, the latent space
#
# Decode a grid of $z$ over $[-2.5, 2.5]^2$ (the decoder's pixel probabilities, white = 1), draw
# samples $z \sim p(z)$, $x \sim p(x \mid z)$ (binary, as the data), and reconstruct test digits
# through $q(z \mid x)$ (one draw of $z$, then the decoder's probabilities). This is the IAF VAE;
# with two latent numbers, the latent space holds a few digit shapes (0, 3, 4, 1 and blends
# between them) and smears the rest.

# %% mystnb={"image": {"alt": "Three panels from the IAF VAE: a 12 by 12 grid of digits decoded from latent points on a grid from -2.5 to 2.5, changing smoothly from one digit shape to another; 48 binary samples from the model; and test digits alternating with their blurred reconstructions."}}
model = models["IAF K=2"]
with torch.no_grad():
    axis = torch.linspace(-2.5, 2.5, 12)
    latent_grid = torch.stack([torch.stack([axis[j], -axis[i]]) for i in range(12) for j in range(12)])
    decoded = torch.sigmoid(model.decoder(latent_grid)).reshape(12, 12, 64)
    torch.manual_seed(4)
    samples = torch.bernoulli(torch.sigmoid(model.decoder(torch.randn(48, LATENT)))).reshape(8, 6, 64)
    h = model.encoder(test[:12])
    reconstructed = torch.sigmoid(model.decoder(model.posterior.sample(12, context=h)))
fig, axes = plt.subplots(1, 3, figsize=(12, 5), layout="constrained", width_ratios=(2, 1, 1))
viz.plot_images(16 * decoded, axes[0], title="the latent space: decoded z on a grid")
viz.plot_images(16 * samples, axes[1], title="samples: z ~ p(z), x ~ p(x | z)")
pairs = torch.stack([test[:6], reconstructed[:6], test[6:12], reconstructed[6:12]])
viz.plot_images(16 * pairs, axes[2], row_labels=["test", "recon.", "test", "recon."],
                title="test digits, reconstructed")
plt.show()

# %% [markdown]
# **The learned transformation of one posterior.** For test digit 11, the IAF VAE's
# $q(z \mid x)$: the base $\mathcal N(0, I)$, the encoder's Gaussian after the first layer, then the
# two IAF layers bending it towards the posterior. The picture keeps the base's scale, so the
# posterior of one digit, narrow because 64 pixels pin $z$ down, ends small; the titles name the
# context, the encoder's 32 numbers $h(x)$, by its first four, and call the variable $x$, as for
# any flow: here it is the latent $z$.

# %% mystnb={"image": {"alt": "Animation of the posterior of one test digit in the IAF VAE: base samples and a grid carried first by the encoder's Gaussian and then by two IAF layers into the flow posterior q(z given x), with its density alongside."}}
h11 = table["IAF K=2"][1][2]
gif = viz.save_transformation_gif(model.posterior, "11_posterior_transformation.gif", context=h11, frames=16,
                                  density=True, bounds=((-3, 3), (-3, 3)), figsize=(11, 4.8))
Image(filename=gif)

# %% mystnb={"image": {"alt": "Static picture of the transformation player at its end: the points, the grid and the density of the flow posterior q(z given x) for test digit 11; the layer-time slider needs a running kernel."}}
widgets.TransformationPlayer(model.posterior, context=h11, density=True, bounds=((-3, 3), (-3, 3)), figsize=(11, 4.8))

# %% [markdown]
# ## 7. Exercises
#
# Each exercise has a cell for your answer: replace the `...` and run it, then run the cell
# below it, whose `check` says whether the answer is right and, if not, what is off. Stuck?
# Remove the `#` before `hint()` in the next cell; once you have tried, the one before
# `solution()` shows a worked answer.
#
# **Exercise 1.** For one image, $K = 3$ draws $z_k \sim q(z \mid x)$ have the log-weights
# $\log w_k = \log p(x, z_k) - \log q(z_k \mid x) = (-3, -1, -2)$. What is the importance-weighted
# bound $\log \frac1K \sum_k w_k$ they give? (Compare it with the ELBO's estimate, their mean.)

# %%
answer = ...  # a number

# %%
questions["iw"].check(answer)

# %%
# questions["iw"].hint()
# questions["iw"].solution()

# %% [markdown]
# **Exercise 2.** A VAE gives a test digit of 64 binary pixels $\log p(x) = -19$ nats. How many
# bits per dimension is that?

# %%
answer = ...  # a number

# %%
questions["bits"].check(answer)

# %%
# questions["bits"].hint()
# questions["bits"].solution()

# %% [markdown]
# ## Summary
#
# - For any encoder, $\log p(x) = \mathrm{ELBO}(x) + \mathrm{KL}(q(z \mid x) \,\|\, p(z \mid x))$:
#   training a VAE fits the model and pulls $q$ towards the true posterior; the
#   importance-weighted bound with $K$ draws closes in on $\log p(x)$ and estimates it.
# - A flow enters the encoder as a conditional flow on the encoder's context $h(x)$: planar
#   layers whose parameters are outputs of the encoder, or IAF layers whose MADE reads $h(x)$.
# - Four VAEs on binarised digits, trained alike for 500 steps: ELBOs from -20.48 to -20.31 nats
#   per image, importance-weighted $\log p(x)$ from -19.52 to -19.33 nats (about 0.44 bits per
#   dimension, against 0.568 for independent pixels). The flows did not beat the Gaussian: from
#   one seed, the four are tied, and the Gaussian's average KL (0.87 nats) was the smallest.
# - With a 2-D latent space the exact posterior is a grid away: KLs by quadrature from 0.25 to
#   1.07 nats on three test digits, agreeing with $\log p(x) - \mathrm{ELBO}$ to within 0.05.
# - The amortization gap, 0.31 to 0.52 nats on average, is larger than what is left when $q$ is
#   optimised for each image alone (0.06 to 0.13 for the flows, 0.19 for the Gaussian): here
#   the encoder, not the shape of $q$, is what keeps $q$ from the truth.
#
# ## Where to go next
#
# You have met the main families of normalizing flows, trained each on a CPU in seconds,
# measured each against the truth, and conditioned them. Beyond this course:
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
#   a continuous flow like lesson 9's, and whose text-to-image versions are guided as in
#   section 5; *rectified flows* (Liu et al., 2023) straighten the paths further;
#   *optimal-transport couplings* of minibatches (Tong et al., 2024) make them straighter still.
# - *Stochastic interpolants* (Albergo & Vanden-Eijnden, 2023) unify flow matching and
#   diffusion.
#
# **Applications.**
# - *Density estimation and anomaly detection* (lesson 8), with the caveat that high likelihood
#   does not mean typical.
# - *Variational inference* with IAF and planar flows (lessons 4 and 6); *simulation-based
#   inference* with the `sbi` package, which adds sequential rounds (spending simulations where
#   the observation is), embedding networks for high-dimensional observations, and likelihood
#   and ratio estimators next to NPE.
# - *Generation*: images (Glow), audio (WaveGlow), molecules (equivariant flows, Boltzmann
#   generators that sample physical systems with exact densities for reweighting).
# - *Lossless compression* (lesson 8): a likelihood model driving an entropy coder, made
#   practical by bits-back coding.
# - Libraries to continue with: zuko and nflows (PyTorch), normflows, Pyro's and TensorFlow
#   Probability's bijectors, `sbi` for inference, and torchdiffeq for ODEs.
