"""Property tests of every bijector in float64: round trips, log-dets against autograd,
structure of the Jacobian, gradients, constraints and input errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd.functional import jacobian

import nflesson as nf
from cases import CASES, autograd_log_abs_det, data_points, make, randomize, real_points, tolerance

NAMES = sorted(CASES)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_both_ways(name):
    b, dim = make(name)
    z = real_points(64, dim)
    x, _ = b(z)
    assert torch.allclose(b.inverse(x)[0], z, atol=tolerance(name), rtol=0)
    x = data_points(name, b, dim, 64)
    assert torch.allclose(b(b.inverse(x)[0])[0], x, atol=tolerance(name), rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_log_det_matches_autograd_jacobian(name):
    b, dim = make(name)
    z = real_points(8, dim)
    ld = b(z)[1]
    assert ld.shape == (8,)
    assert ld.abs().max() > 1e-3 or name.startswith("permute") or name == "coupling_additive"
    assert torch.allclose(ld, autograd_log_abs_det(b, z), atol=tolerance(name, 1e-8), rtol=0)
    x = data_points(name, b, dim, 8)
    assert torch.allclose(b.inverse(x)[1], autograd_log_abs_det(b.inverse, x), atol=tolerance(name, 1e-8), rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_inverse_log_det_is_minus_forward_log_det(name):
    b, dim = make(name)
    z = real_points(32, dim)
    x, ld_forward = b(z)
    assert torch.allclose(b.inverse(x)[1], -ld_forward, atol=tolerance(name), rtol=0)


PARAMETER_FREE = ("exp", "sigmoid", "logit_pixels", "permute_reverse", "permute_given")


@pytest.mark.parametrize("name", [n for n in NAMES if n not in PARAMETER_FREE])
def test_gradients_reach_every_parameter(name):
    b, dim = make(name)
    x = data_points(name, b, dim, 32)
    z, ld = b.inverse(x)
    (z.square().sum() - ld.sum()).backward()
    for module_name, module in b.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            grad = p.grad
            assert grad is not None, f"no gradient reaches {module_name}.{pname}"
            if isinstance(module, nf.nets.MaskedLinear) and pname == "weight":
                assert (grad[module.mask == 0] == 0).all(), "a masked weight gets a gradient"
                grad = grad[module.mask == 1]  # empty for the first layer of a 1D MADE
                if grad.numel() == 0:
                    continue
            assert grad.abs().max() > 0, f"no gradient reaches {module_name}.{pname}"


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("exp",)])
def test_large_inputs_give_finite_log_dets(name):
    b, dim = make(name)
    z = torch.full((4, dim), 1e3, dtype=torch.float64) * torch.tensor([1.0, -1.0, 0.5, -0.25], dtype=torch.float64)[:, None]
    if name in ("sigmoid", "logit_pixels"):  # their inverse only takes the bounded range of the forward map
        assert torch.isfinite(b(z)[1]).all()
        return
    for fn in (b, b.inverse):
        out, ld = fn(z)
        assert torch.isfinite(ld).all() and torch.isfinite(out).all()


def test_exp_log_det_at_large_input_is_finite():
    assert torch.isfinite(nf.Exp()(torch.tensor([[1e3, -1e3]], dtype=torch.float64))[1]).all()


@pytest.mark.parametrize("name", ["coupling_halves", "coupling_alternating", "coupling_custom_mask", "coupling_additive",
                                  "spline_coupling", "spline_coupling_alternating"])
def test_coupling_jacobian_is_triangular(name):
    b, dim = make(name)
    kept, changed = b.mask, ~b.mask
    for v in real_points(4, dim):
        jac = jacobian(lambda u: b(u.unsqueeze(0))[0].squeeze(0), v)  # jac[i, j] = d x_i / d z_j
        assert torch.equal(jac[kept][:, kept], torch.eye(int(kept.sum()), dtype=jac.dtype))
        assert (jac[kept][:, changed] == 0).all()
        off_diagonal = jac[changed][:, changed] - torch.diag(torch.diagonal(jac[changed][:, changed]))
        assert (off_diagonal == 0).all()
        assert jac[changed][:, kept].abs().max() > 0


@pytest.mark.parametrize("name", ["maf", "maf_order", "iaf", "spline_autoregressive", "spline_autoregressive_order"])
def test_autoregressive_jacobian_is_triangular_in_its_order(name):
    b, dim = make(name)
    made = (b.bijector if isinstance(b, nf.Inverse) else b).made
    order = torch.argsort(made.degrees)  # coordinates sorted by degree
    for v in real_points(4, dim):
        jac = jacobian(lambda u: b(u.unsqueeze(0))[0].squeeze(0), v)[order][:, order]
        assert (jac.triu(1) == 0).all()
        assert jac.tril(-1).abs().max() > 0


@pytest.mark.parametrize("dim, hidden, order", [(2, 8, None), (5, 16, None), (4, 3, [3, 1, 0, 2]), (6, 64, None)])
def test_made_masks_are_exactly_autoregressive(dim, hidden, order):
    made = nf.MADE(dim, hidden, params_per_dim=3, order=order)
    masks = made.masks()
    connectivity = masks[0].T
    for m in masks[1:]:
        connectivity = connectivity @ m.T  # (inputs, outputs): number of paths
    degrees = made.degrees
    allowed = degrees[:, None] < degrees.repeat(3)[None, :]
    assert ((connectivity > 0) <= allowed).all(), "an output sees an input that is not before it"
    if hidden >= dim - 1:
        assert ((connectivity > 0) == allowed).all(), "an allowed connection is missing"
    randomize(made.double(), 0.5)
    x = real_points(1, dim)[0]
    jac = jacobian(lambda u: made(u.unsqueeze(0)).squeeze(0), x)  # (params, dim, dim)
    assert ((jac != 0).any(0).T <= allowed[:, :dim]).all()


def test_made_output_layer_starts_at_zero_so_maf_starts_as_identity():
    b = nf.MaskedAutoregressive(3).double()
    z = real_points(10, 3)
    x, ld = b(z)
    assert torch.equal(x, z) and torch.equal(ld, torch.zeros(10, dtype=torch.float64))


@pytest.mark.parametrize("name", ["affine", "linear", "lu_linear", "actnorm", "radial_2d", "coupling_halves", "maf"])
def test_fresh_bijectors_are_the_identity(name):
    b = CASES[name][0]().double()
    z = real_points(10, CASES[name][1])
    if name == "actnorm":
        b.eval()
    x, ld = b(z)
    assert torch.allclose(x, z, atol=1e-12) and torch.allclose(ld, torch.zeros(10, dtype=torch.float64), atol=1e-12)


def test_fresh_planar_is_close_to_the_identity():
    b = nf.Planar(2).double()
    z = real_points(100, 2)
    assert (b(z)[0] - z).abs().max() < 0.05


def test_affine_log_det_is_sum_of_log_scales():
    b = nf.Affine(2).double()
    with torch.no_grad():
        b.log_scale.copy_(torch.tensor([math.log(2.0), math.log(3.0)]))
        b.shift.copy_(torch.tensor([1.0, -1.0]))
    x, ld = b(torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    assert torch.allclose(x, torch.tensor([[3.0, 2.0]], dtype=torch.float64))
    assert torch.allclose(ld, torch.tensor([math.log(6.0)], dtype=torch.float64))


def test_exp_and_sigmoid_reject_points_outside_their_range():
    with pytest.raises(ValueError, match="x > 0"):
        nf.Exp().inverse(torch.tensor([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="0 < x < 1"):
        nf.Sigmoid().inverse(torch.tensor([[0.5, 1.0]]))


def test_lu_linear_weight_is_lower_times_upper_and_log_det_is_linear_cost():
    b, _ = make("lu_linear")
    lower, upper = b.triangular_factors()
    assert torch.allclose(torch.diagonal(lower), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(b(real_points(3, 4))[1], torch.linalg.slogdet(b.weight).logabsdet.expand(3))


def test_actnorm_initialises_from_data_once_and_reloads_without_reinitialising():
    layer = nf.ActNorm(2).double()
    x = real_points(500, 2) * torch.tensor([3.0, 0.5], dtype=torch.float64) + torch.tensor([5.0, -2.0], dtype=torch.float64)
    z, _ = layer.inverse(x)
    assert torch.allclose(z.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(z.std(0), torch.ones(2, dtype=torch.float64), atol=1e-12)
    shift = layer.shift.detach().clone()
    layer.inverse(x * 10)  # a second batch does not re-initialise
    assert torch.equal(layer.shift, shift)
    reloaded = nf.ActNorm(2).double()
    reloaded.load_state_dict(layer.state_dict())
    reloaded.inverse(x * 10)
    assert torch.equal(reloaded.shift, shift) and bool(reloaded.initialized)


def test_actnorm_forward_does_not_initialise():
    layer = nf.ActNorm(2)
    layer(torch.randn(10, 2) * 5)
    assert not layer.initialized


def test_permute_validates_the_permutation():
    with pytest.raises(ValueError, match="permutation"):
        nf.Permute([0, 0, 1])
    with pytest.raises(ValueError, match="permutation"):
        nf.Permute([])
    assert nf.Permute(3).permutation.tolist() == [2, 1, 0]


# --- constraints under adversarial raw parameters ----------------------------------------

@pytest.mark.parametrize("scale", [1.0, 30.0, 1e3])
@pytest.mark.parametrize("dim", [1, 2, 5])
def test_planar_constraint_holds_for_opposed_u_and_w(scale, dim):
    b = nf.Planar(dim).double()
    with torch.no_grad():
        direction = torch.linspace(1.0, 2.0, dim, dtype=torch.float64)
        b.w.copy_(direction * scale)
        b.u.copy_(-direction * scale)  # w.u very negative: the raw layer would not be invertible
        b.b.fill_(0.3)
    assert b.w @ b.u_hat() >= -1
    z = real_points(200, dim) * 3
    x, ld = b(z)
    assert torch.isfinite(ld).all()
    assert torch.allclose(b.inverse(x)[0], z, atol=1e-9, rtol=0)


@pytest.mark.parametrize("beta_raw", [-1e3, -50.0, -3.0, 0.0, 4.0, 200.0])
def test_radial_constraint_holds_for_extreme_beta(beta_raw):
    b = nf.Radial(2).double()
    with torch.no_grad():
        b.beta_raw.fill_(beta_raw)
        b.alpha_raw.fill_(-0.7)
    alpha, beta = b.alpha_beta()
    assert alpha > 0 and beta >= -alpha
    z = real_points(200, 2) * 2
    x, ld = b(z)
    assert torch.isfinite(ld).all()
    assert torch.allclose(b.inverse(x)[0], z, atol=1e-9, rtol=0)


finite = st.floats(-4.0, 4.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(w=st.lists(finite, min_size=3, max_size=3), u=st.lists(finite, min_size=3, max_size=3),
       b=finite, seed=st.integers(0, 2**16))
def test_planar_inverse_is_accurate_for_any_parameters(w, u, b, seed):
    """Backward error 1e-10: the inverse's output maps back onto x. Forward error within what the
    problem's conditioning allows: near w.u_hat = -1 the map is nearly flat along w
    (|det J| = exp(ld) down to 1e-6), and a rounding of y moves the root by 1 / |det J| times as
    much, so the bound is 1e-10 plus 1000 machine epsilons of y times that factor."""
    layer = nf.Planar(3).double()
    with torch.no_grad():
        layer.w.copy_(torch.tensor(w))
        layer.u.copy_(torch.tensor(u))
        layer.b.fill_(b)
    z = real_points(50, 3, seed) * 3
    x, ld = layer(z)
    z_back, ld_back = layer.inverse(x)
    assert (layer(z_back)[0] - x).abs().max() <= 1e-10
    y = (x @ layer.w + layer.b).abs()
    allowed = 1e-10 + 1000 * torch.finfo(torch.float64).eps * (1 + y) * torch.exp(-ld)
    assert ((z_back - z).abs().max(-1).values <= allowed).all()
    assert torch.allclose(ld_back, -ld, atol=1e-8)


@settings(max_examples=60, deadline=None)
@given(z0=st.lists(finite, min_size=2, max_size=2), alpha_raw=finite, beta_raw=st.floats(-20, 20),
       seed=st.integers(0, 2**16))
def test_radial_inverse_is_accurate_for_any_parameters(z0, alpha_raw, beta_raw, seed):
    layer = nf.Radial(2).double()
    with torch.no_grad():
        layer.z0.copy_(torch.tensor(z0))
        layer.alpha_raw.fill_(alpha_raw)
        layer.beta_raw.fill_(beta_raw)
    z = real_points(50, 2, seed) * 3
    x, ld = layer(z)
    z_back, ld_back = layer.inverse(x)
    assert (z_back - z).abs().max() <= 1e-9
    assert torch.allclose(ld_back, -ld, atol=1e-8)


def test_planar_inverse_is_differentiable_with_the_implicit_gradient():
    b, _ = make("planar_2d")
    x = real_points(8, 2)
    params = list(b.parameters())

    def nll():
        z, ld = b.inverse(x)
        return (0.5 * z.square().sum(-1) - ld).sum()

    grads = torch.autograd.grad(nll(), params)
    eps = 1e-6
    for p, g in zip(params, grads):
        for i in range(p.numel()):
            with torch.no_grad():
                p.view(-1)[i] += eps
                up = nll()
                p.view(-1)[i] -= 2 * eps
                down = nll()
                p.view(-1)[i] += eps
            assert abs((up - down).item() / (2 * eps) - g.reshape(-1)[i].item()) < 1e-5


# --- input errors -----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_wrong_inputs_raise_clear_errors(name):
    b, dim = make(name)
    if b.dim is None:
        return
    with pytest.raises(ValueError, match=f"{dim + 1} columns.*dim = {dim}"):
        b(torch.zeros(3, dim + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"shape \(batch, dim\)"):
        b.inverse(torch.zeros(dim, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating dtype"):
        b(torch.zeros(3, dim, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        b([[0.0] * dim])


@pytest.mark.parametrize("constructor", [nf.Affine, nf.Linear, nf.LULinear, nf.ActNorm, nf.Planar, nf.Radial,
                                         nf.AffineCoupling, nf.MaskedAutoregressive, nf.MADE, nf.Permute])
@pytest.mark.parametrize("dim", [0, -2, 1.5, "2", True])
def test_bad_dim_raises(constructor, dim):
    wrong_type = isinstance(dim, bool) or not isinstance(dim, int)
    with pytest.raises(TypeError if wrong_type else ValueError, match="dim"):
        constructor(dim)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dim=4, mask=[1, 0, 1]), "length dim = 4"),
    (dict(dim=3, mask=[1, 1, 1]), "keep some coordinates and change others"),
    (dict(dim=1), "keep some coordinates"),
    (dict(dim=3, mask=[0, 2, 1]), "booleans or 0/1"),
    (dict(dim=3, mask="checkerboard"), "halves"),
    (dict(dim=2, hidden=0), "hidden"),
    (dict(dim=2, max_log_scale=0), "max_log_scale"),
])
def test_coupling_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nf.AffineCoupling(**kwargs)


def test_autoregressive_bad_arguments():
    with pytest.raises(ValueError, match="hidden"):
        nf.MaskedAutoregressive(3, hidden=0)
    with pytest.raises(ValueError, match="permutation of 0..2"):
        nf.MADE(3, order=[0, 1, 1])
    with pytest.raises(ValueError, match="max_log_scale"):
        nf.MaskedAutoregressive(3, max_log_scale=-1.0)
    with pytest.raises(TypeError, match="Bijector"):
        nf.Inverse(torch.nn.Linear(2, 2))


def test_shift_and_log_scale_are_what_the_layers_apply():
    coupling, _ = make("coupling_halves")
    z = real_points(16, 4)
    shift, log_scale = coupling.shift_and_log_scale(z[:, coupling.kept])
    assert shift.shape == log_scale.shape == (16, 2) and log_scale.abs().max() <= coupling.max_log_scale
    x, log_det = coupling(z)
    assert torch.allclose(x[:, coupling.changed], z[:, coupling.changed] * log_scale.exp() + shift)
    assert torch.allclose(log_det, log_scale.sum(-1))
    assert make("coupling_additive")[0].shift_and_log_scale(z[:, :2])[1] is None
    maf, _ = make("maf")
    x, log_det = maf(z)
    shift, log_scale = maf.shift_and_log_scale(x)  # computed from the data side
    assert torch.allclose(x, z * log_scale.exp() + shift) and torch.allclose(log_det, log_scale.sum(-1))


@pytest.mark.parametrize("w, u_hat, b", [
    ([1.0, -1.0], [0.5, 1.2], 0.3),
    ([2.0, 0.5, -1.0], [-0.2, 0.1, 0.55], -1.0),  # w.u_hat = -0.9, near the limit -1
    ([0.0, 0.0], [1.0, -2.0], 0.5),  # w = 0: a translation by u_hat tanh(b)
    ([3.0, 0.0], [-0.3333, 5.0], 0.0),
])
def test_planar_with_parameters_has_exactly_those_effective_parameters(w, u_hat, b):
    layer = nf.Planar.with_parameters(torch.tensor(w, dtype=torch.float64), torch.tensor(u_hat, dtype=torch.float64), b)
    layer = layer.double()
    w, u_hat = torch.tensor(w, dtype=torch.float64), torch.tensor(u_hat, dtype=torch.float64)
    assert torch.allclose(layer.u_hat(), u_hat, atol=1e-12, rtol=0)
    z = real_points(20, len(w))
    expected = z + u_hat * torch.tanh(z @ w + b).unsqueeze(-1)
    assert torch.allclose(layer(z)[0], expected, atol=1e-12, rtol=0)


def test_with_parameters_builds_a_float64_layer_from_any_float64_argument():
    f64 = torch.tensor([-0.5, 1.0 - 1e-10], dtype=torch.float64)
    planar = nf.Planar.with_parameters([1.0, 0.0], f64, 0.25)  # w a list: the layer still keeps u_hat's digits
    assert planar.w.dtype == torch.float64 and torch.equal(planar.u_hat().detach(), f64)
    planar = nf.Planar.with_parameters([1.0, 0.0], [-1.0 + 2e-6, 0.0])  # just above the floor, float32
    assert planar.w.dtype == torch.float32 and (planar.w @ planar.u_hat()).item() > -1
    radial = nf.Radial.with_parameters([1.0, 1.0], torch.tensor(0.3, dtype=torch.float64), 2.0)
    assert radial.z0.dtype == torch.float64 and abs(radial.alpha_beta()[0].item() - 0.3) < 1e-15


def test_radial_with_parameters_has_exactly_those_effective_parameters():
    z0 = torch.tensor([1.0, 1.0], dtype=torch.float64)
    for alpha, beta in [(0.5, 2.0), (2.0, -1.9), (1e-3, 50.0)]:
        layer = nf.Radial.with_parameters(z0, alpha, beta).double()
        got_alpha, got_beta = layer.alpha_beta()
        assert abs(got_alpha.item() - alpha) < 1e-12 and abs(got_beta.item() - beta) < 1e-12 * (1 + abs(beta))
        z = real_points(20, 2)
        r = (z - z0).norm(dim=-1, keepdim=True)
        assert torch.allclose(layer(z)[0], z + beta * (z - z0) / (alpha + r), atol=1e-12, rtol=0)


@pytest.mark.parametrize("call, message", [
    (lambda: nf.Planar.with_parameters([1.0, 0.0], [-1.0, 0.0]), "w.u_hat must be > -1"),
    (lambda: nf.Planar.with_parameters([1.0, 0.0], [-3.0, 1.0]), "w.u_hat must be > -1"),
    (lambda: nf.Planar.with_parameters([1.0, 0.0], [1.0, 0.0, 0.0]), "u_hat must be a vector of length 2"),
    (lambda: nf.Planar.with_parameters([[1.0, 0.0]], [1.0, 0.0]), "w must be a vector"),
    (lambda: nf.Radial.with_parameters([0.0, 0.0], 0.0, 1.0), "alpha must be > 0"),
    (lambda: nf.Radial.with_parameters([0.0, 0.0], 1.0, -1.0), "beta must be > -alpha"),
    (lambda: nf.Radial.with_parameters(0.0, 1.0, 1.0), "z0 must be a vector"),
    (lambda: nf.Planar.with_parameters([1.0, 0.0], [-1.0 + 1e-9, 0.0]), "w.u_hat must be > -1"),  # below the floor
    (lambda: nf.Planar.with_parameters([1.0, 0.0], [0.0, 0.0], b=[0.0, 1.0]), "b must be a number"),
    (lambda: nf.Planar.with_parameters([float("nan"), 0.0], [0.0, 0.0]), "w must be finite"),
    (lambda: nf.Radial.with_parameters([0.0, 0.0], [1.0, 2.0], 1.0), "alpha must be a number"),
    (lambda: nf.Radial.with_parameters([0.0, 0.0], 1.0, float("inf")), "beta must be finite"),
])
def test_with_parameters_refuses_what_is_not_invertible(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_planar_nearest_invertible_moves_u_hat_along_w_only_when_needed():
    w = torch.tensor([1.0, -1.0])
    u_hat, moved = nf.Planar.nearest_invertible(w, torch.tensor([-2.0, 1.0]))
    assert moved and float(w @ u_hat) == pytest.approx(-0.99)
    assert torch.allclose(u_hat - torch.tensor([-2.0, 1.0]), (u_hat - torch.tensor([-2.0, 1.0]))[0] * w)  # along w
    nf.Planar.with_parameters(w, u_hat)  # invertible: accepted
    for w, u_hat in ((w, torch.tensor([0.5, 0.0])), (torch.zeros(2), torch.tensor([-5.0, 3.0]))):
        same, moved = nf.Planar.nearest_invertible(w, u_hat)
        assert not moved and torch.equal(same, u_hat)
