"""nflesson.vae in float64: the amortized layers are bijections with the right log-det, the
importance-weighted bound behaves as its formula says, the grid posterior is normalised and
exact on a conjugate Gaussian toy, and KL by quadrature is right."""

import math

import pytest
import torch

import nflesson as nf
from nflesson import vae as V


def _random(layer, scale=0.7, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, scale)
    return layer.double()


@pytest.mark.parametrize("make", [lambda: V.AmortizedAffine(2, context=3), lambda: V.AmortizedPlanar(2, context=3),
                                  lambda: V.AmortizedPlanar(3, context=3)], ids=["affine", "planar-2d", "planar-3d"])
def test_amortized_layers_round_trip_and_log_det(make):
    layer = _random(make())
    dim = layer.dim
    z, c = torch.randn(40, dim, dtype=torch.float64), torch.randn(40, 3, dtype=torch.float64)
    x, log_det = layer(z, context=c)
    back, inverse_log_det = layer.inverse(x, context=c)
    assert torch.allclose(back, z, atol=1e-10) and torch.allclose(inverse_log_det, -log_det, atol=1e-10)
    jac = torch.func.vmap(torch.func.jacrev(lambda p, ci: layer(p[None], context=ci[None])[0][0]))(z, c)
    assert torch.allclose(torch.linalg.slogdet(jac).logabsdet, log_det, atol=1e-10)


def test_planar_stays_invertible_for_adversarial_parameters():
    layer = _random(V.AmortizedPlanar(2, context=2), scale=5.0, seed=3)
    c = 10 * torch.randn(500, 2, dtype=torch.float64)
    w, u_hat, _ = layer.parameters_for(c)
    assert ((w * u_hat).sum(1) > -1).all()
    z = torch.randn(500, 2, dtype=torch.float64)
    x, _ = layer(z, context=c)
    assert torch.allclose(layer.inverse(x, context=c)[0], z, atol=1e-8)


def test_fresh_layers_are_the_identity_or_close():
    z, c = torch.randn(10, 2), torch.randn(10, 4)
    x, log_det = V.AmortizedAffine(2, 4)(z, context=c)
    assert torch.equal(x, z) and torch.equal(log_det, torch.zeros(10))
    x, log_det = V.AmortizedPlanar(2, 4)(z, context=c)
    assert (x - z).abs().max() < 0.2 and log_det.abs().max() < 0.2


def _toy_vae(kind="gaussian", layers=0):
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh())
    dec = torch.nn.Linear(2, 6)
    model = V.VAE(enc, V.posterior(kind, 8, layers, hidden=8), dec).double()
    with torch.no_grad():
        for p in model.posterior.parameters():
            p.normal_(0, 0.1)
    return model


X = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 0, 1, 0, 1, 1]], dtype=torch.float64)


@pytest.mark.parametrize("kind,layers", [("gaussian", 0), ("planar", 2), ("iaf", 2)])
def test_importance_weighted_bound_increases_with_samples_towards_the_grid_evidence(kind, layers):
    model = _toy_vae(kind, layers)
    torch.manual_seed(1)
    with torch.no_grad():
        log_w = model.log_weights(X, 24_000)  # (24000, 2): E[L_K] from 24000 / K repetitions of K draws
    bounds = [V.importance_weighted_bound(log_w.reshape(K, -1, 2).transpose(0, 1).reshape(K, -1)).mean().item()
              for K in (1, 10, 100, 1000)]
    elbo = log_w.mean().item()
    log_px = sum(V.grid_posterior(lambda z, x=x: model.log_joint(x, z), ((-7, 7), (-7, 7)), 200,
                                  dtype=torch.float64).log_evidence for x in X) / 2
    assert abs(bounds[0] - elbo) < 1e-12  # one sample: the ELBO's estimate itself
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3] <= log_px + 0.03
    assert log_px - bounds[3] < 0.15  # (these random q are poor proposals)
    torch.manual_seed(2)
    assert abs(model.importance_weighted(X, 3000).mean().item() - log_px) < 0.15
    # log p(x) - ELBO = KL(q || p(z | x)), by quadrature
    kl = 0.0
    for x in X:
        grid = V.grid_posterior(lambda z, x=x: model.log_joint(x, z), ((-7, 7), (-7, 7)), 200, dtype=torch.float64)
        h = model.encoder(x[None])[0].detach()
        result = V.kl_on_grid(lambda z: model.posterior.log_prob(z, context=h), grid)
        assert abs(result.mass - 1) < 1e-6
        kl += result.nats / 2
    assert abs(log_px - elbo - kl) < 0.05


def test_importance_weighted_bound_formula():
    log_w = torch.log(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    assert torch.allclose(V.importance_weighted_bound(log_w), torch.log(torch.tensor([2.0, 3.0], dtype=torch.float64)))
    assert torch.equal(V.importance_weighted_bound(log_w[:1]), log_w[0])
    big = torch.tensor([[-1000.0], [-1001.0]], dtype=torch.float64)  # stable far from 0
    assert torch.isfinite(V.importance_weighted_bound(big)).all()


def _gaussian_toy():
    """x | z ~ N(A z, s^2 I) with z ~ N(0, I): the exact posterior and evidence in closed form."""
    A = torch.tensor([[1.0, 0.5], [-0.3, 2.0], [0.7, 0.1]], dtype=torch.float64)
    s, x = 0.5, torch.tensor([0.4, -1.0, 0.8], dtype=torch.float64)
    precision = torch.eye(2, dtype=torch.float64) + A.T @ A / s**2
    cov = torch.linalg.inv(precision)
    mean = cov @ A.T @ x / s**2
    evidence = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64),
                                                      A @ A.T + s**2 * torch.eye(3, dtype=torch.float64))

    def log_joint(z):
        return (torch.distributions.Normal(z @ A.T, s).log_prob(x).sum(1)
                + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1))
    return log_joint, torch.distributions.MultivariateNormal(mean, cov), evidence.log_prob(x).item()


def test_grid_posterior_is_exact_on_a_conjugate_gaussian():
    log_joint, exact, log_evidence = _gaussian_toy()
    grid = V.grid_posterior(log_joint, ((-5, 5), (-5, 5)), 200, dtype=torch.float64)
    assert abs(grid.log_density.exp().sum().item() * grid.cell_area - 1) < 1e-12
    assert abs(grid.log_evidence - log_evidence) < 1e-8
    assert torch.allclose(grid.log_density, exact.log_prob(grid.points), atol=1e-8)
    lo, hi = grid.bounds[0]
    assert -5 < lo and hi < 5, "zoomed on the posterior"
    unzoomed = V.grid_posterior(log_joint, ((-5, 5), (-5, 5)), 200, zoom=False, dtype=torch.float64)
    assert unzoomed.bounds == ((-5.0, 5.0), (-5.0, 5.0)) and abs(unzoomed.log_evidence - log_evidence) < 1e-6
    assert grid.image().shape == (200, 200)


def test_kl_by_quadrature_is_zero_for_q_equal_p_and_right_for_two_gaussians():
    log_joint, exact, _ = _gaussian_toy()
    grid = V.grid_posterior(log_joint, ((-5, 5), (-5, 5)), 200, dtype=torch.float64)
    same = V.kl_on_grid(exact.log_prob, grid)
    assert abs(same.nats) < 1e-9 and abs(same.mass - 1) < 1e-9
    other = torch.distributions.MultivariateNormal(exact.mean + 0.05, exact.covariance_matrix * 1.2)
    result = V.kl_on_grid(other.log_prob, grid)
    assert abs(result.nats - torch.distributions.kl_divergence(other, exact).item()) < 1e-6


def test_argument_checks():
    with pytest.raises(ValueError, match="kind"):
        V.posterior("radial", 4, 2)
    with pytest.raises(ValueError, match="layers"):
        V.posterior("gaussian", 4, 2)
    with pytest.raises(ValueError, match="layers >= 1"):
        V.posterior("iaf", 4, 0)
    with pytest.raises(TypeError, match="context"):
        V.AmortizedAffine(2, context=1.5)
    with pytest.raises(TypeError, match="conditional nflesson Flow"):
        V.VAE(torch.nn.Identity(), nf.flows.planar(2, 2), torch.nn.Identity())
    with pytest.raises(TypeError, match="encoder"):
        V.VAE("net", V.posterior("gaussian", 4), torch.nn.Identity())
    model = _toy_vae()
    with pytest.raises(ValueError, match="binary"):
        model.elbo(X * 3)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model.elbo([[1, 0]])
    with pytest.raises(ValueError, match="samples must be"):
        model.importance_weighted(X, 0)
    with pytest.raises(ValueError, match=r"bounds\[0\]"):
        V.grid_posterior(lambda z: z[:, 0], ((1, -1), (0, 1)))
    with pytest.raises(TypeError, match="log_joint"):
        V.grid_posterior("f")
    with pytest.raises(ValueError, match="one number per point"):
        V.grid_posterior(lambda z: z, ((-1, 1), (-1, 1)), 10)
    with pytest.raises(TypeError, match="GridPosterior"):
        V.kl_on_grid(lambda z: z[:, 0], None)
    with pytest.raises(TypeError, match="samples, batch"):
        V.importance_weighted_bound([1.0])
    with pytest.raises(ValueError, match="samples, batch"):
        V.importance_weighted_bound(torch.zeros(3))
    with pytest.raises(ValueError, match="conditional"):
        V.posterior("planar", 4, 2).log_prob(torch.zeros(1, 2))


def test_exported_from_the_package():
    for name in ("VAE", "AmortizedAffine", "AmortizedPlanar", "grid_posterior", "kl_on_grid",
                 "importance_weighted_bound"):
        assert getattr(nf, name) is getattr(V, name)
    assert nf.vae is V
