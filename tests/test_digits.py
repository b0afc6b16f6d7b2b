"""Flows on real data (lesson 08): the digits and their fixed splits, dequantization, the
pixel-to-real map in float64, likelihoods of the discrete images (the dequantization bound,
bits per dimension), and the layers of a 64-D flow tested in 64-D."""

import math

import pytest
import torch
from torch.autograd.functional import jacobian

import nflesson as nf
from cases import autograd_log_abs_det, randomize, real_points

DIGITS = nf.data.digits()
SPLITS = {"train": 1000, "validation": 297, "test": 500}


def dequantized_pixels(n, seed=3):
    """n dequantized test images in float64: points on the data side of a digits flow."""
    x = DIGITS.test[:n].double()
    return nf.dequantize(x, torch.Generator().manual_seed(seed))


# --- the data ------------------------------------------------------------------------------

def test_digits_splits_have_the_documented_sizes_types_and_levels():
    assert DIGITS.shape == (8, 8) and DIGITS.levels == 17
    for name, n in SPLITS.items():
        x, labels = getattr(DIGITS, name), getattr(DIGITS, f"{name}_labels")
        assert x.shape == (n, 64) and x.dtype == torch.float32
        assert labels.shape == (n,) and labels.dtype == torch.int64
        assert torch.equal(x, x.round()) and x.min() == 0 and x.max() == DIGITS.levels - 1
        assert set(labels.tolist()) == set(range(10))
        assert x.reshape(-1, *DIGITS.shape).shape == (n, 8, 8)


def test_digits_splits_partition_scikit_learns_digits():
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    rows = [tuple(x) + (int(y),) for x, y in zip(pixels.tolist(), labels)]
    ours = [tuple(x) + (int(y),) for name in SPLITS
            for x, y in zip(getattr(DIGITS, name).tolist(), getattr(DIGITS, f"{name}_labels").tolist())]
    assert sorted(ours) == sorted(rows)


def test_digits_splits_are_stratified():
    counts = torch.bincount(torch.cat([DIGITS.train_labels, DIGITS.validation_labels, DIGITS.test_labels]))
    for name, n in SPLITS.items():
        share = torch.bincount(getattr(DIGITS, f"{name}_labels")) - n * counts / counts.sum()
        assert share.abs().max() < 1


def test_digits_splits_are_fixed_and_each_call_gets_tensors_of_its_own():
    """The same split with scikit-learn 1.2.2 and 1.9.1 (checked when it was written)."""
    assert DIGITS.train_labels[:10].tolist() == [2, 4, 4, 2, 3, 0, 3, 8, 7, 6]
    assert [getattr(DIGITS, name).sum().item() for name in SPLITS] == [312361.0, 93018.0, 156339.0]
    again = nf.data.digits()
    assert again is not DIGITS and again.shape == DIGITS.shape and again.levels == DIGITS.levels
    for name in [*SPLITS, *(f"{name}_labels" for name in SPLITS)]:
        mine, theirs = getattr(again, name), getattr(DIGITS, name)
        assert torch.equal(mine, theirs) and mine.dtype == theirs.dtype
        assert mine.data_ptr() != theirs.data_ptr(), f"{name} shares its storage between calls"


# --- dequantization and the pixel-to-real map -------------------------------------------------

def test_dequantize_adds_seeded_uniform_noise_in_the_unit_cell():
    x = DIGITS.train
    y = nf.dequantize(x, torch.Generator().manual_seed(0))
    assert y.dtype == x.dtype and ((y >= x) & (y < x + 1)).all()
    assert torch.equal(y, nf.dequantize(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(y, nf.dequantize(x, torch.Generator().manual_seed(1)))
    u = (y - x).double()
    assert abs(u.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / u.numel())
    assert nf.dequantize(x.double()).dtype == torch.float64


@pytest.mark.parametrize("dim", [1, 64])
@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_logit_pixels_round_trip_and_log_dets_against_autograd(dim, alpha):
    b = nf.LogitPixels(17, alpha)
    y = dequantized_pixels(8)[:, :dim]
    z, ld_inverse = b.inverse(y)
    assert torch.allclose(b(z)[0], y, atol=1e-12, rtol=0)
    assert torch.allclose(ld_inverse, autograd_log_abs_det(b.inverse, y), atol=1e-10, rtol=0)
    z = real_points(8, dim) * 3
    y, ld_forward = b(z)
    assert torch.allclose(b.inverse(y)[0], z, atol=1e-9, rtol=0)
    assert torch.allclose(ld_forward, autograd_log_abs_det(b, z), atol=1e-10, rtol=0)
    assert torch.allclose(b.inverse(y)[1], -ld_forward, atol=1e-10, rtol=0)


def test_logit_pixels_is_the_scaled_logit_of_realnvp():
    b = nf.LogitPixels(17, 0.05)
    y = torch.tensor([[0.0, 8.5, 17.0 - 1e-12]], dtype=torch.float64)
    p = 0.05 + 0.9 * y / 17
    z, ld = b.inverse(y)
    assert torch.allclose(z, torch.log(p / (1 - p)), atol=1e-12, rtol=0)
    assert torch.allclose(ld, (math.log(0.9 / 17) - torch.log(p * (1 - p))).sum(-1), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logit_pixels_is_finite_at_the_edges_of_the_pixel_range(dtype):
    top = 17 - torch.finfo(dtype).eps * 17  # x = 16 plus noise just below 1
    y = torch.tensor([[0.0, top], [top, 0.0]], dtype=dtype)
    z, ld = nf.LogitPixels(17).inverse(y)
    assert z.dtype == dtype and torch.isfinite(z).all() and torch.isfinite(ld).all()
    assert torch.allclose(nf.LogitPixels(17)(z)[0], y, atol=1e-4, rtol=0)
    y, ld = nf.LogitPixels(17)(torch.tensor([[-800.0, 800.0]], dtype=dtype))
    assert torch.isfinite(y).all() and torch.isfinite(ld).all()


def test_logit_pixels_refuses_bad_arguments_and_points_outside_its_range():
    for alpha in (-0.1, 0.5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="alpha must be"):
            nf.LogitPixels(17, alpha)
    for alpha in (True, "0.1", None):  # a wrong type is a TypeError
        with pytest.raises(TypeError, match="alpha must be a number"):
            nf.LogitPixels(17, alpha)
    with pytest.raises(ValueError, match="levels must be an integer >= 1"):
        nf.LogitPixels(0)
    for levels in (2.5, True, "17"):
        with pytest.raises(TypeError, match="levels must be an integer >= 1"):
            nf.LogitPixels(levels)
    with pytest.raises(ValueError, match=r"LogitPixels.inverse needs pixels in \(-0.1735, 17.17\)"):
        nf.LogitPixels(17).inverse(torch.tensor([[18.0]]))
    with pytest.raises(ValueError, match="needs pixels in"):
        nf.LogitPixels(17, alpha=0).inverse(torch.tensor([[0.0]]))
    assert repr(nf.LogitPixels(17, 0.05)) == "LogitPixels(levels=17, alpha=0.05)"


# --- likelihoods of the discrete images ------------------------------------------------------

def test_bits_per_dim():
    assert nf.bits_per_dim(64 * math.log(2) * 2.5) == pytest.approx(2.5, abs=1e-12)
    assert nf.bits_per_dim(64 * math.log(17)) == pytest.approx(math.log2(17), abs=1e-12)  # uniform levels
    assert nf.bits_per_dim(3 * math.log(2), dim=3) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(nf.bits_per_dim(torch.tensor([64 * math.log(2)])), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="dim"):
        nf.bits_per_dim(1.0, dim=0)


def toy_flow():
    """A 1D flow on 4 pixel levels: an affine map, then the pixel-to-real map."""
    flow = nf.Flow([nf.Affine(1), nf.LogitPixels(4, alpha=0.05)]).double()
    with torch.no_grad():
        flow.layers[0].shift.fill_(0.4)
        flow.layers[0].log_scale.fill_(0.3)
    return flow


def test_dequantization_bounds_the_discrete_log_likelihood_from_below():
    """log P(x) = log of the integral of q over [x, x + 1) >= E_u log q(x + u), both by quadrature."""
    flow = toy_flow()
    nodes, weights = nf.data.gauss_legendre(64)

    def log_q_on(lo, hi):
        """log q at the 64 nodes of each interval [lo, hi), and the weights of the rule there."""
        y = lo[:, None] + (hi - lo)[:, None] * (nodes + 1) / 2
        with torch.no_grad():
            return flow.log_prob(y.reshape(-1, 1)).reshape(len(lo), 64), (hi - lo)[:, None] * weights / 2

    x = torch.arange(4, dtype=torch.float64)
    log_q, w = log_q_on(x, x + 1)
    log_p = torch.log((log_q.exp() * w).sum(1))
    bound = (log_q * w).sum(1)
    assert (bound < log_p).all() and (log_p - bound).min() > 1e-3
    # sum_x P(x) < 1: the forward map reaches a little beyond [0, 4), and that mass is lost
    low, high = -0.05 * 4 / 0.9, 4 + 0.05 * 4 / 0.9
    log_q_outside, w_outside = log_q_on(torch.tensor([low, 4.0], dtype=torch.float64),
                                        torch.tensor([0.0, high], dtype=torch.float64))
    lost = (log_q_outside.exp() * w_outside).sum()
    assert lost > 1e-3 and abs(log_p.exp().sum() + lost - 1) < 1e-6
    with torch.no_grad():  # one noise draw for each of 20,000 copies of every x
        draws = nf.dequantized_log_likelihood(flow, x.repeat_interleave(20_000)[:, None],
                                              generator=torch.Generator().manual_seed(0)).reshape(4, -1)
    standard_error = draws.std(1) / math.sqrt(20_000)
    assert ((draws.mean(1) - bound).abs() < 4 * standard_error).all()


def test_dequantized_log_likelihood_is_the_mean_over_noise_draws():
    torch.manual_seed(0)
    flow = nf.Flow([randomize(nf.flows.glow(64, layers=1, hidden=8), 0.05), nf.LogitPixels(17)]).double()
    x = DIGITS.test[:5].double()
    with torch.no_grad():
        got = nf.dequantized_log_likelihood(flow, x, samples=3, generator=torch.Generator().manual_seed(7))
        generator = torch.Generator().manual_seed(7)
        draws = [flow.log_prob(x + torch.rand(x.shape, generator=generator, dtype=x.dtype)) for _ in range(3)]
    assert got.shape == (5,) and torch.allclose(got, torch.stack(draws).mean(0), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="samples must be an integer >= 1"):
        nf.dequantized_log_likelihood(flow, x, samples=0)
    with pytest.raises(ValueError, match="63 columns"):
        nf.dequantized_log_likelihood(flow, x[:, :63])


def test_dequantized_log_likelihood_of_a_conditional_flow_takes_a_context_and_shares_the_noise():
    torch.manual_seed(0)
    flow = nf.Flow([randomize(nf.flows.glow(64, layers=1, hidden=8, context=10), 0.05), nf.LogitPixels(17)]).double()
    x, labels = DIGITS.test[:6].double(), torch.eye(10, dtype=torch.float64)
    with torch.no_grad():
        by_label = [nf.dequantized_log_likelihood(flow, x, samples=2, generator=torch.Generator().manual_seed(7),
                                                  context=labels[k]) for k in (3, 5)]
        generator = torch.Generator().manual_seed(7)
        noisy = [x + torch.rand(x.shape, generator=generator, dtype=x.dtype) for _ in range(2)]
        for k, got in zip((3, 5), by_label):  # the same seed: the same noise for every label
            expected = torch.stack([flow.log_prob(y, context=labels[k]) for y in noisy]).mean(0)
            assert torch.allclose(got, expected, atol=1e-12, rtol=0)
    assert not torch.allclose(*by_label)
    with pytest.raises(ValueError, match="conditional on a context of width 10"):
        nf.dequantized_log_likelihood(flow, x)
    generator = torch.Generator().manual_seed(1)
    state = generator.get_state()
    with pytest.raises(ValueError, match="context has 3 rows for 6 points"):
        nf.dequantized_log_likelihood(flow, x, generator=generator, context=labels[:3])
    assert torch.equal(generator.get_state(), state)  # refused before any noise was drawn


def test_a_short_training_run_on_the_digits_beats_uniform_pixels():
    torch.manual_seed(0)
    flow = nf.Flow([nf.flows.glow(64, layers=2, hidden=16), nf.LogitPixels(DIGITS.levels)])
    nf.fit(flow, DIGITS.train, steps=150, batch_size=128, lr=2e-3, progress=False, transform=nf.dequantize)
    flow.eval()
    with torch.no_grad():
        log_likelihood = nf.dequantized_log_likelihood(flow, DIGITS.test, generator=torch.Generator().manual_seed(0))
    bits = nf.bits_per_dim(-log_likelihood.mean().item())
    assert 1.5 < bits < 3.0 < math.log2(DIGITS.levels)


# --- the layers of a 64-D flow, in 64-D --------------------------------------------------------

LAYERS_64 = {
    "actnorm": lambda: nf.ActNorm(64),
    "lu_linear": lambda: nf.LULinear(64),
    "coupling_halves": lambda: nf.AffineCoupling(64, "halves", hidden=16),
    "coupling_alternating": lambda: nf.AffineCoupling(64, "alternating", hidden=16),
    "glow": lambda: nf.flows.glow(64, layers=2, hidden=16),
    "glow_on_pixels": lambda: nf.Flow([nf.flows.glow(64, layers=2, hidden=16), nf.LogitPixels(17)]),
}


def make_64(name):
    torch.manual_seed(0)
    return randomize(LAYERS_64[name]().double(), 0.1)


def points_64(name, n):
    return dequantized_pixels(n) if name == "glow_on_pixels" else real_points(n, 64)


@pytest.mark.parametrize("name", sorted(LAYERS_64))
def test_64d_round_trip_both_ways(name):
    b = make_64(name)
    z = real_points(32, 64)
    assert torch.allclose(b.inverse(b(z)[0])[0], z, atol=1e-9, rtol=0)
    x = points_64(name, 32)
    assert torch.allclose(b(b.inverse(x)[0])[0], x, atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", sorted(LAYERS_64))
def test_64d_log_dets_against_autograd(name):
    b = make_64(name)
    z = real_points(3, 64)
    x, ld_forward = b(z)
    assert ld_forward.abs().min() > 1e-2  # not the identity
    assert torch.allclose(ld_forward, autograd_log_abs_det(b, z), atol=1e-8, rtol=0)
    assert torch.allclose(b.inverse(x)[1], -ld_forward, atol=1e-8, rtol=0)
    x = points_64(name, 3)
    assert torch.allclose(b.inverse(x)[1], autograd_log_abs_det(b.inverse, x), atol=1e-8, rtol=0)


@pytest.mark.parametrize("name", ["coupling_halves", "coupling_alternating"])
def test_64d_coupling_jacobian_is_triangular(name):
    b = make_64(name)
    kept, changed = b.mask, ~b.mask
    for v in real_points(2, 64):
        jac = jacobian(lambda u: b(u.unsqueeze(0))[0].squeeze(0), v)  # jac[i, j] = d x_i / d z_j
        assert torch.equal(jac[kept][:, kept], torch.eye(32, dtype=jac.dtype))
        assert (jac[kept][:, changed] == 0).all()
        block = jac[changed][:, changed]
        assert torch.equal(block, torch.diag(torch.diagonal(block))) and jac[changed][:, kept].abs().max() > 0


def test_actnorm_standardises_the_logits_of_dequantized_digits():
    layer, logits = nf.ActNorm(64).double(), nf.LogitPixels(17).inverse(nf.dequantize(DIGITS.train.double()))[0]
    z, _ = layer.inverse(logits)
    assert torch.allclose(z.mean(0), torch.zeros(64, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(z.std(0), torch.ones(64, dtype=torch.float64), atol=1e-10)
