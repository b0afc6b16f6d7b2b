"""Misuse of the data, the metrics, dequantization, the figures, the widgets and the exercises, as a
careless learner commits it: every mistake gets a TypeError or ValueError in nflesson's words
(naming the argument, what it got and what it needs) before anything changes, and nothing is
poisoned (the rule is written in nflesson/checks.py). The flows and training loops have theirs in
test_misuse.py."""

import dataclasses
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nflesson as nf
from nflesson import data, exercises, viz, widgets

matplotlib.use("Agg")

F64 = torch.float64
NAN, INF = float("nan"), float("inf")
DIGITS = data.digits()


# --- targets ------------------------------------------------------------------------------------

def test_get_refuses_a_name_that_is_not_a_string_listing_the_names():
    for name in (3, None, ["moons"], data.get("moons")):
        with pytest.raises(TypeError, match=r"must be a string, one of gaussian1d, .*u4; got"):
            data.get(name)


@pytest.mark.parametrize("generator", [0, "seed", torch.Generator().manual_seed(0).get_state(), 1.5])
def test_sample_refuses_a_generator_that_is_not_one(generator):
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator .* or None, got"):
        data.get("moons").sample(5, generator=generator)


@pytest.mark.parametrize("name", data.names())
def test_log_prob_nan_in_nan_out_and_minus_inf_at_infinity_for_every_target(name):
    target = data.get(name)
    d = target.dim
    rows = [[NAN] * d, [NAN] + [0.0] * (d - 1), [INF] * d, [-INF] * d, [INF] + [0.0] * (d - 1),
            [0.0] * (d - 1) + [-INF], [0.5] * d]
    for dtype in (torch.float32, F64):
        log_p = target.log_prob(torch.tensor(rows, dtype=dtype))
        assert log_p.dtype == dtype and log_p.shape == (7,)
        assert torch.isnan(log_p[:2]).all(), f"NaN rows of {name} should give NaN, got {log_p[:2]}"
        assert (log_p[2:6] == -INF).all(), f"points at infinity of {name} should give -inf, got {log_p[2:6]}"
        assert torch.isfinite(log_p[6]) or name == "checkerboard"
        assert target.log_prob(torch.zeros(0, d, dtype=dtype)).shape == (0,)


@pytest.mark.parametrize("name", data.names())
def test_log_prob_of_huge_finite_points_is_never_nan(name):
    target = data.get(name)
    for dtype, big in ((torch.float32, 3e38), (F64, 1.7e308), (F64, 1e160)):
        values = [0.0, big, -big, 1.0]
        rows = torch.tensor([[a] if target.dim == 1 else [a, b] for a in values for b in values], dtype=dtype)
        log_p = target.log_prob(rows)
        assert not torch.isnan(log_p).any() and not (log_p == INF).any(), (name, dtype, rows[torch.isnan(log_p)])


def test_log_prob_refuses_half_precision():
    for dtype in (torch.float16, torch.bfloat16):
        with pytest.raises(TypeError, match=r"x must be float32 or float64, got torch\.(b?float16)"):
            data.get("gaussian2d").log_prob(torch.zeros(3, 2, dtype=dtype))


BOX = ((-1.0, 1.0), (-2.0, 2.0))


@pytest.mark.parametrize("make, error, message", [
    (lambda: data.Gaussian("g", [0, 0], [[1, 2], [2, 1]], BOX), ValueError, r"cov must be positive definite.*"
                                                                            r"eigenvalues \[-1.0, 3.0\]"),
    (lambda: data.Gaussian("g", [0, 0], [[2, 7], [7, 1]], BOX), ValueError, "cov must be positive definite"),
    (lambda: data.Gaussian("g", [0, 0], [[1, 0.5], [0, 1]], BOX), ValueError, "cov must be symmetric"),
    (lambda: data.Gaussian("g", [0, 0], [[1, 0]], BOX), ValueError,
     r"cov must have shape \(2, 2\).*got shape \(1, 2\)"),
    (lambda: data.Gaussian("g", [[0, 0]], [[1, 0], [0, 1]], BOX), ValueError, r"mean must be a vector \(d,\)"),
    (lambda: data.Gaussian("g", [0, NAN], [[1, 0], [0, 1]], BOX), ValueError, "mean must hold finite numbers"),
    (lambda: data.Gaussian("g", "ab", [[1, 0], [0, 1]], BOX), TypeError, "mean must be a sequence of numbers"),
    (lambda: data.Gaussian("g", [0, 0], [["a", 0], [0, 1]], BOX), TypeError, "cov must be a 2 x 2 matrix of numbers"),
    (lambda: data.Gaussian(5, [0, 0], [[1, 0], [0, 1]], BOX), TypeError, "name must be a string, got int"),
    (lambda: data.Gaussian("g", [0, 0], [[1, 0], [0, 1]], BOX[:1]), ValueError, r"bounds must be .* 2 \(low, high\)"),
    (lambda: data.Gaussian("g", [0, 0], [[1, 0], [0, 1]], ((1, -1), (0, 1))), ValueError, r"bounds\[0\] must have "
                                                                                          "low < high"),
    (lambda: data.Gaussian("g", [0, 0], [[1, 0], [0, 1]], ((0, INF), (0, 1))), ValueError, r"bounds\[0\] high must be "
                                                                                           "a finite number"),
    (lambda: data.Gaussian("g", [0, 0], [[1, 0], [0, 1]], "auto"), TypeError, "bounds must be a sequence of 2"),
    (lambda: data.Gaussian("g", [0, 0], [[1, 0], [0, 1]], ((0, "1"), (0, 1))), TypeError, r"bounds\[0\] high must be a "
                                                                                          "number"),
    (lambda: data.IsotropicMixture("m", [[0.0], [1.0]], [1, 1], [0.5, 0.6], BOX[:1], 1.0), ValueError,
     r"weights must be >= 0 and add up to 1 .*sum 1.1.*w / w.sum\(\)"),
    (lambda: data.IsotropicMixture("m", [[0.0], [1.0]], [1, 1], [1.5, -0.5], BOX[:1], 1.0), ValueError,
     "weights must be >= 0"),
    (lambda: data.IsotropicMixture("m", [[0.0], [1.0]], [1, 1], [1.0], BOX[:1], 1.0), ValueError,
     r"weights must have shape \(2,\)"),
    (lambda: data.IsotropicMixture("m", [[0.0], [1.0]], [1, 0], [0.5, 0.5], BOX[:1], 1.0), ValueError,
     "stds must be 2 numbers > 0"),
    (lambda: data.IsotropicMixture("m", [0.0, 1.0], [1, 1], [0.5, 0.5], BOX[:1], 1.0), ValueError,
     r"means must have shape \(K, d\)"),
    (lambda: data.IsotropicMixture("m", [[0.0], [1.0]], [1, 1], [0.5, 0.5], BOX[:1], None), TypeError,
     "entropy must be a number, got NoneType"),
    (lambda: data.IsotropicMixture("m", [[0.0], [1.0]], [1, 1], [0.5, 0.5], BOX[:1], NAN), ValueError,
     "entropy must be a finite number"),
    (lambda: data.Rings([1, 2], [0.5, 0.5], 0, BOX, 1.0), ValueError, "sigma must be > 0"),
    (lambda: data.Rings([1, -2], [0.5, 0.5], 0.1, BOX, 1.0), ValueError, "radii must be a sequence of numbers >= 0"),
    (lambda: data.Banana(s=-0.3), ValueError, "s must be > 0"),
    (lambda: data.Banana(b="0.4"), TypeError, "b must be a number, got str"),
    (lambda: data.Banana(b=INF), ValueError, "b must be a finite number"),
    (lambda: data.Moons(nodes=2.5), TypeError, "nodes must be an integer >= 1"),
    (lambda: data.TwoArms(), TypeError, "TwoArms is a base class: use Moons"),
    (lambda: data.Energy("e", 3.0, 0.0, 0.0, 0.0), TypeError, "energy must be a function U"),
    (lambda: data.Energy("e", lambda z: z[:, 0], NAN, 0.0, 0.0), ValueError, "log_max must be a finite number"),
    (lambda: data.gauss_legendre(0), ValueError, "n must be an integer >= 1"),
    (lambda: data.gauss_legendre(8.0), TypeError, "n must be an integer >= 1"),
])
def test_target_constructors_check_their_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_target_built_from_tensors_does_not_follow_later_changes_to_them():
    mean, cov = torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64)
    target = data.Gaussian("g", mean, cov, BOX)
    before = target.log_prob(torch.ones(1, 2))
    mean += 5
    cov *= 3
    assert torch.equal(target.log_prob(torch.ones(1, 2)), before)


# --- the digits: every call hands out tensors of its own ---------------------------------------

def test_an_in_place_change_to_one_calls_digits_leaves_the_next_call_alone():
    sums = [DIGITS.train.sum().item(), DIGITS.validation.sum().item(), DIGITS.test.sum().item()]
    spoiled = data.digits()
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'train'"):
        spoiled.train /= 16  # divides the tensor in place, then the frozen dataclass refuses the assignment
    assert spoiled.train.max() == 1  # this call's tensor is changed ...
    spoiled.test.mul_(0)
    spoiled.validation[:] = -1
    spoiled.train_labels.zero_()
    fresh = data.digits()  # ... and no other call's
    assert [fresh.train.sum().item(), fresh.validation.sum().item(), fresh.test.sum().item()] == sums
    assert fresh.train.max() == DIGITS.levels - 1 and torch.equal(fresh.train_labels, DIGITS.train_labels)
    assert DIGITS.test.sum().item() == sums[2] and set(DIGITS.train_labels.tolist()) == set(range(10))


# --- the gap to the truth -----------------------------------------------------------------------

GAUSSIAN = data.get("gaussian2d")
GAUSSIAN_TEST = GAUSSIAN.sample(4000, generator=torch.Generator().manual_seed(0)).double()


def gaussian_flow(shift=(5.2, 6.8), log_scale=(0.3, 0.1)):
    layer = nf.Affine(2).double()
    with torch.no_grad():
        layer.shift.copy_(torch.tensor(shift, dtype=F64))
        layer.log_scale.copy_(torch.tensor(log_scale, dtype=F64))
    return nf.Flow([layer])


def test_gap_with_its_arguments_swapped_is_refused_with_the_numbers():
    flow = gaussian_flow()
    right = nf.gap(flow, GAUSSIAN, GAUSSIAN_TEST)
    assert right.nats > 0.1
    with pytest.raises(ValueError, match=rf"the estimate of KL\(p \|\| q\) is -{right.nats:.3f}\d* ± .* nats, \d+.* "
                                         r"standard errors below zero.*never negative: are model and target swapped "
                                         r"\(the order is gap\(model, target, test\)\)"):
        nf.gap(GAUSSIAN, flow, GAUSSIAN_TEST)


def test_gap_of_a_model_near_the_truth_may_dip_below_zero_within_its_noise():
    exact = gaussian_flow((5.0, 7.0), (0.5 * math.log(2.0), 0.0))  # not the target (no correlation), but close
    assert nf.gap(GAUSSIAN, GAUSSIAN, GAUSSIAN_TEST) == (0.0, 0.0)
    noisy = nf.gap(lambda x: GAUSSIAN.log_prob(x) + 1e-3 * torch.randn(len(x), dtype=F64), GAUSSIAN, GAUSSIAN_TEST)
    assert abs(noisy.nats) < 5 * noisy.standard_error
    assert nf.gap(exact, GAUSSIAN, GAUSSIAN_TEST).nats > 0


class Unnormalised:
    """The 2D Gaussian target with log Z = 3 left out of its log_prob and no log_normalizer."""

    dim = 2

    def log_prob(self, x):
        return GAUSSIAN.log_prob(x) + 3.0


def test_reverse_gap_of_an_unnormalised_target_without_log_z_is_refused():
    with pytest.raises(ValueError, match=r"the estimate of KL\(q \|\| p\) is -2.\d+ ± .* standard errors below zero.*"
                                         r"unnormalised without a log_normalizer\(\)"):
        nf.reverse_gap(gaussian_flow(), Unnormalised(), n=2000)


@pytest.mark.parametrize("call, error, message", [
    (lambda: nf.gap(gaussian_flow(), GAUSSIAN, GAUSSIAN_TEST[:0]), ValueError, "test must hold at least 2 points"),
    (lambda: nf.gap(gaussian_flow(), GAUSSIAN, GAUSSIAN_TEST[:1]), ValueError, r"at least 2 points .* got 1"),
    (lambda: nf.gap(gaussian_flow(), GAUSSIAN, torch.cat([GAUSSIAN_TEST[:5], torch.full((1, 2), NAN, dtype=F64)])),
     ValueError, r"test has NaN or inf in 1 of its 6 rows \(rows 5\)"),
    (lambda: nf.gap(gaussian_flow(), GAUSSIAN, torch.full((4, 2), INF, dtype=F64)), ValueError, "NaN or inf in 4"),
    (lambda: nf.gap(lambda x: GAUSSIAN.log_prob(x)[:, None], GAUSSIAN, GAUSSIAN_TEST), ValueError,
     r"the model's log_prob must return one log-density per point, shape \(4000,\), got shape \(4000, 1\)"),
    (lambda: nf.gap(lambda x: GAUSSIAN.log_prob(x)[:10], GAUSSIAN, GAUSSIAN_TEST), ValueError, r"got shape \(10,\)"),
    (lambda: nf.gap(lambda x: 0.0, GAUSSIAN, GAUSSIAN_TEST), TypeError, "must return a tensor of log-densities, "
                                                                        "got float"),
    (lambda: nf.gap(lambda x: torch.full((len(x),), NAN), GAUSSIAN, GAUSSIAN_TEST), ValueError,
     "the model's log_prob is NaN at 4000 of the 4000 points"),
    (lambda: nf.gap(None, GAUSSIAN, GAUSSIAN_TEST), TypeError, "model must be a Flow .* got NoneType"),
    (lambda: nf.gap(nf.Flow, GAUSSIAN, GAUSSIAN_TEST), TypeError, "model must be a Flow .* got type"),
    (lambda: nf.gap(gaussian_flow(), "gaussian2d", GAUSSIAN_TEST), TypeError, "target must be something with a "
                                                                              "log_prob method, got str"),
    (lambda: nf.gap(gaussian_flow(), data.get("gaussian1d"), GAUSSIAN_TEST), ValueError,
     "the model has dim = 2 but the target has dim = 1"),
    (lambda: nf.gap(gaussian_flow(), data.get("checkerboard"), GAUSSIAN_TEST), ValueError,
     "the target's density is 0 at 4000 of the test points.*are model and target swapped"),
    (lambda: nf.reverse_gap(gaussian_flow(), GAUSSIAN, seed=None), TypeError, "seed must be an integer >= 0, got "
                                                                              "NoneType"),
    (lambda: nf.reverse_gap(gaussian_flow(), GAUSSIAN, seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    (lambda: nf.reverse_gap(gaussian_flow(), GAUSSIAN, seed=1.5), TypeError, "seed must be an integer >= 0"),
    (lambda: nf.reverse_gap(gaussian_flow(), GAUSSIAN, n=1), ValueError, "n must be an integer >= 2, got 1"),
    (lambda: nf.reverse_gap(gaussian_flow(), GAUSSIAN, n=100.0), TypeError, "n must be an integer >= 2"),
    (lambda: nf.reverse_gap(gaussian_flow(), data.get("gaussian1d")), ValueError, "the flow has dim = 2 but the "
                                                                                  "target has dim = 1"),
    (lambda: nf.gap(nf.Affine(2), GAUSSIAN, GAUSSIAN_TEST), TypeError,
     r"model must be a Flow .* got Affine, and a bijector is not a model: wrap it as nf\.Flow\(\[b\]\)"),
    (lambda: nf.gap(nf.Planar(2).double(), GAUSSIAN, GAUSSIAN_TEST), TypeError, "a bijector is not a model"),
    (lambda: nf.reverse_gap(nf.Affine(2), GAUSSIAN), TypeError, r"flow must be something with a sample_and_log_prob "
                                                                r"method, got Affine, and a bijector is not a model: "
                                                                r"wrap it as nf\.Flow\(\[b\]\)"),
    (lambda: nf.gap(nf.flows.linear(2), MOONS, MOONS.sample(50).double()), TypeError,
     r"^test is float64 but this flow computes in float32: convert the points \(\.float\(\)\) or the flow "
     r"\(\.double\(\)\)"),
    (lambda: nf.gap(gaussian_flow(), GAUSSIAN, GAUSSIAN_TEST.float()), TypeError,
     "^test is float32 but this flow computes in float64"),
    (lambda: nf.reverse_gap(GAUSSIAN, gaussian_flow()), TypeError, "flow must be something with a "
                                                                   "sample_and_log_prob method, got Gaussian"),
])
def test_gap_and_reverse_gap_check_their_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_reverse_gap_checks_its_seed_before_touching_the_random_state():
    torch.manual_seed(7)
    state = torch.get_rng_state()
    with pytest.raises(TypeError):
        nf.reverse_gap(gaussian_flow(), GAUSSIAN, seed=None)
    assert torch.equal(torch.get_rng_state(), state)


def test_a_density_of_zero_where_the_other_is_not_gives_an_infinite_gap():
    flow = gaussian_flow()
    assert nf.gap(lambda x: torch.full((len(x),), -INF, dtype=F64), GAUSSIAN, GAUSSIAN_TEST) == (INF, INF)
    assert nf.reverse_gap(nf.flows.linear(2), data.get("checkerboard"), n=500) == (INF, INF)
    assert math.isfinite(nf.gap(flow, GAUSSIAN, GAUSSIAN_TEST).nats)
    assert str(nf.Gap(INF, INF)) == "inf ± inf nats"


# --- dequantization and bits per dimension ------------------------------------------------------

def test_dequantize_refuses_scaled_pixels():
    for scaled in (DIGITS.test / 16, DIGITS.test / 255, DIGITS.test + 0.5):
        with pytest.raises(ValueError, match=r"x must hold integer pixel levels 0, 1, ..., L - 1, but it holds "
                                             r"non-integer values such as .*dequantize the levels, then scale"):
            nf.dequantize(scaled)


def test_dequantize_takes_integer_tensors_in_the_default_dtype():
    levels = DIGITS.test[:20]
    for dtype in (torch.int64, torch.int32, torch.uint8):
        y = nf.dequantize(levels.to(dtype), torch.Generator().manual_seed(0))
        assert y.dtype == torch.get_default_dtype()
        assert torch.equal(y, nf.dequantize(levels, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("x, generator, error, message", [
    ([[1, 2]], None, TypeError, "x must be a torch.Tensor of integer pixel levels .* got list"),
    (DIGITS.test.numpy(), None, TypeError, "got ndarray"),
    (torch.ones(2, 2, dtype=torch.bool), None, TypeError, "integer or floating tensor.*torch.bool"),
    (torch.ones(2, 2, dtype=torch.complex64), None, TypeError, "torch.complex64"),
    (DIGITS.test - 1, None, ValueError, "x must hold pixel levels >= 0 .* got the value -1"),
    (torch.tensor([[1.0, NAN]]), None, ValueError, "x has NaN or inf entries"),
    (torch.tensor([[1.0, INF]]), None, ValueError, "x has NaN or inf entries"),
    (DIGITS.test, 0, TypeError, r"generator must be a torch.Generator \(e.g. torch.Generator\(\).manual_seed\(0\)\) "
                                r"or None, got int 0"),
])
def test_dequantize_checks_its_arguments(x, generator, error, message):
    with pytest.raises(error, match=message):
        nf.dequantize(x, generator)


def test_dequantize_of_an_empty_batch_is_empty():
    assert nf.dequantize(torch.zeros(0, 64)).shape == (0, 64)
    assert nf.dequantize(torch.zeros(0, 64, dtype=torch.int64)).dtype == torch.get_default_dtype()


def test_bits_per_dim_refuses_a_log_likelihood():
    with pytest.raises(ValueError, match=r"nats_per_image must be a negative log-likelihood \(NLL\), which is >= 0 "
                                         r"for discrete data, got -120: .*bits_per_dim\(-log_likelihood\)"):
        nf.bits_per_dim(-120.0)
    with pytest.raises(ValueError, match="got -1"):
        nf.bits_per_dim(torch.tensor([100.0, -1.0]))
    assert nf.bits_per_dim(0) == 0.0 and nf.bits_per_dim(torch.zeros(0)).shape == (0,)
    assert torch.allclose(nf.bits_per_dim(torch.tensor([64 * math.log(2)], dtype=F64)), torch.ones(1, dtype=F64))


@pytest.mark.parametrize("nats, dim, error, message", [
    ("120", 64, TypeError, "nats_per_image must be a number or a tensor, got str"),
    (None, 64, TypeError, "got NoneType"),
    (True, 64, TypeError, "got a bool"),
    (NAN, 64, ValueError, "nats_per_image must be a finite number, got nan"),
    (INF, 64, ValueError, "must be a finite number, got inf"),
    (torch.tensor([1.0, NAN]), 64, ValueError, "nats_per_image has NaN or inf entries"),
    (torch.tensor([True]), 64, TypeError, "must hold real numbers, got a tensor of torch.bool"),
    (120.0, 0, ValueError, "dim must be an integer >= 1"),
    (120.0, 64.0, TypeError, "dim must be an integer >= 1, got float"),
])
def test_bits_per_dim_checks_its_arguments(nats, dim, error, message):
    with pytest.raises(error, match=message):
        nf.bits_per_dim(nats, dim)


def pixel_flow(dtype=torch.float32):
    torch.manual_seed(0)
    return nf.Flow([nf.Affine(64), nf.LogitPixels(17)]).to(dtype)


def test_dequantized_log_likelihood_takes_integer_images_in_the_flows_dtype():
    for dtype in (torch.float32, F64):
        flow = pixel_flow(dtype)
        with torch.no_grad():
            from_ints = nf.dequantized_log_likelihood(flow, DIGITS.test[:4].long(), 2, torch.Generator().manual_seed(1))
            from_floats = nf.dequantized_log_likelihood(flow, DIGITS.test[:4].to(dtype), 2,
                                                        torch.Generator().manual_seed(1))
        assert from_ints.dtype == dtype and torch.equal(from_ints, from_floats)


@pytest.mark.parametrize("call, error, message", [
    (lambda f, g: nf.dequantized_log_likelihood(f, DIGITS.test[:3] / 16, generator=g), ValueError, "non-integer"),
    (lambda f, g: nf.dequantized_log_likelihood(f, DIGITS.test[:3].double(), generator=g), TypeError,
     r"x is float64 but this flow computes in float32"),
    (lambda f, g: nf.dequantized_log_likelihood(f, DIGITS.test[:3], samples=0, generator=g), ValueError,
     "samples must be an integer >= 1"),
    (lambda f, g: nf.dequantized_log_likelihood(f, DIGITS.test[:3], generator=3), TypeError,
     "generator must be a torch.Generator"),
    (lambda f, g: nf.dequantized_log_likelihood("flow", DIGITS.test[:3], generator=g), TypeError,
     r"flow must be a nflesson Flow \(with log_prob and dim\), got str"),
    (lambda f, g: nf.dequantized_log_likelihood(f, DIGITS.test[:3, :8], generator=g), ValueError, "8 columns"),
])
def test_dequantized_log_likelihood_checks_before_drawing_noise(call, error, message):
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    with pytest.raises(error, match=message):
        call(pixel_flow(), generator)
    assert torch.equal(generator.get_state(), state), "the generator moved before the error"


def test_dequantized_log_likelihood_of_no_images_is_empty():
    with torch.no_grad():
        assert nf.dequantized_log_likelihood(pixel_flow(), DIGITS.test[:0]).shape == (0,)


# --- random bad arguments: only TypeError/ValueError, and nothing poisoned ----------------------

BAD_VALUES = st.one_of(
    st.sampled_from([None, 0, -1, 2.5, True, "x", NAN, INF, -INF, [[0.0, 0.0]], (1, 2), {}, torch.Generator()]),
    st.builds(lambda shape: torch.zeros(shape), st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)),
    st.sampled_from([torch.zeros(4, 2, dtype=F64), torch.zeros(4, 2, dtype=torch.int64),
                     torch.zeros(4, 2, dtype=torch.bool), torch.full((4, 2), NAN), torch.full((4, 2), INF),
                     torch.full((4, 2), -INF), torch.zeros(4, 2, dtype=torch.complex64),
                     torch.zeros(4, 2, dtype=torch.float16), torch.zeros(4, 1), torch.zeros(4, 64) + 0.5,
                     torch.tensor(3.0), torch.tensor([-2.0, 1.0])]),
)
GOOD_POINTS = torch.tensor([[0.3, -0.2], [1.0, 0.5], [-1.5, 2.0]])


def good_results():
    """Results of good calls, to compare before and after the bad ones."""
    torch.manual_seed(0)
    out = {name: data.get(name).log_prob(GOOD_POINTS[:, : data.get(name).dim]) for name in data.names()}
    out["samples"] = data.get("spirals").sample(5, generator=torch.Generator().manual_seed(3))
    out["gap"] = torch.tensor(nf.gap(gaussian_flow(), GAUSSIAN, GAUSSIAN_TEST[:500]))
    out["reverse"] = torch.tensor(nf.reverse_gap(gaussian_flow(), GAUSSIAN, n=500, seed=2))
    out["dequantized"] = nf.dequantize(DIGITS.test[:3], torch.Generator().manual_seed(4))
    out["bits"] = torch.tensor(nf.bits_per_dim(100.0))
    out["rng"] = torch.rand(3)
    return out


GOOD = good_results()


@settings(max_examples=40, deadline=None)
@given(a=BAD_VALUES, b=BAD_VALUES, name=st.sampled_from(["moons", "gaussian1d", "checkerboard", "u2", "spirals"]))
def test_random_bad_arguments_raise_only_clear_errors_and_poison_nothing(a, b, name):
    target = data.get(name)
    calls = [
        lambda: data.get(a), lambda: target.sample(a), lambda: target.sample(3, generator=a),
        lambda: target.log_prob(a), lambda: data.gauss_legendre(a),
        lambda: nf.gap(gaussian_flow(), GAUSSIAN, a), lambda: nf.gap(a, GAUSSIAN, GAUSSIAN_TEST[:50]),
        lambda: nf.gap(gaussian_flow(), a, GAUSSIAN_TEST[:50]), lambda: nf.reverse_gap(gaussian_flow(), GAUSSIAN, a),
        lambda: nf.reverse_gap(gaussian_flow(), GAUSSIAN, 100, a), lambda: nf.reverse_gap(a, GAUSSIAN, 100),
        lambda: nf.dequantize(a), lambda: nf.dequantize(DIGITS.test[:2], a), lambda: nf.bits_per_dim(a),
        lambda: nf.bits_per_dim(10.0, a), lambda: nf.LogitPixels(a), lambda: nf.LogitPixels(17, a),
        lambda: nf.dequantized_log_likelihood(pixel_flow(), a), lambda: nf.dequantized_log_likelihood(a, b),
        lambda: nf.dequantized_log_likelihood(pixel_flow(), DIGITS.test[:2], a, b),
        lambda: data.Gaussian("g", a, b, BOX), lambda: data.IsotropicMixture("m", a, [1.0], [1.0], BOX[:1], 1.0),
        lambda: data.Rings([1.0], [1.0], a, BOX, 1.0), lambda: data.Banana(a, b),
    ]
    for call in calls:
        try:
            result = call()
        except (TypeError, ValueError):
            continue
        if isinstance(result, torch.Tensor) and result.is_floating_point() and result.dim() == 1 and result.numel():
            assert not torch.isnan(result).all() or isinstance(a, torch.Tensor) and torch.isnan(a).any()
    again = good_results()
    for key, value in GOOD.items():
        assert torch.equal(again[key], value), f"{key} changed after bad calls"


# --- figures and GIFs: every check before a figure is drawn or a file written --------------------

MOONS = data.get("moons")
PLANE = ((-3.0, 3.0), (-3.0, 3.0))


def planar_flow():
    torch.manual_seed(0)
    return nf.flows.planar(2, layers=2)


def one_image():
    return viz.figure_image(viz.agg_figure((1, 1), dpi=20))


@pytest.fixture(scope="module")
def history():
    torch.manual_seed(0)
    return nf.fit(nf.flows.linear(2), MOONS.sample(200), steps=4, snapshot_every=2, grid_size=10, n_samples=20,
                  progress=False)


@pytest.mark.parametrize("fps, error, message", [
    (0, ValueError, "fps must be > 0 and <= 100, got 0"), (-8, ValueError, "fps must be > 0"),
    (INF, ValueError, "fps must be a finite number"), (NAN, ValueError, "fps must be a finite number"),
    (500, ValueError, "fps must be > 0 and <= 100"), ("8", TypeError, "fps must be a number, got str"),
])
def test_write_gif_checks_fps_before_writing(tmp_path, fps, error, message):
    with pytest.raises(error, match=message):
        viz.write_gif([one_image()], tmp_path / "a.gif", fps=fps)
    assert not (tmp_path / "a.gif").exists()


def test_write_gif_checks_its_images_and_path(tmp_path):
    image = one_image()
    for images, path, error, message in (
        ([], tmp_path / "a.gif", ValueError, "images is empty: a GIF needs at least one frame"),
        (image, tmp_path / "a.gif", TypeError, "images must be a list of PIL images .* got Image"),
        ([image, 3], tmp_path / "a.gif", TypeError, r"images\[1\] is int"),
        ([image], 3, TypeError, r"path must be a file name \(str or pathlib.Path\) ending in .gif, got int"),
        ([image], tmp_path / "a.png", ValueError, "path must end in .gif"),
        ([image], tmp_path / "missing" / "a.gif", ValueError, "the folder of path .* does not exist"),
    ):
        with pytest.raises(error, match=message):
            viz.write_gif(images, path)
    with pytest.raises(ValueError, match="first must be > 0"):
        viz.write_gif([image], tmp_path / "a.gif", first=-5)
    assert list(tmp_path.iterdir()) == []
    assert viz.write_gif([image, image], tmp_path / "b.GIF", fps=2) == tmp_path / "b.GIF"


@pytest.mark.parametrize("options, error, message", [
    ({"frames": 0}, ValueError, "frames must be an integer >= 2"), ({"frames": 2.5}, TypeError, "frames must be an "
                                                                                                 "integer >= 2"),
    ({"fps": 0}, ValueError, "fps must be > 0"), ({"fps": None}, TypeError, "fps must be a number"),
    ({"seed": None}, TypeError, "seed must be an integer >= 0, got NoneType"),
    ({"seed": -1}, ValueError, "seed must be an integer >= 0"),
    ({"bounds": ((3, -3), (-3, 3))}, ValueError, r"bounds\[0\] must have low < high"),
    ({"bounds": ((-3, 3),)}, ValueError, r"bounds must be a sequence of 2 \(low, high\) pairs"),
    ({"density": "yes"}, TypeError, "density must be True or False, got str"),
    ({"data": torch.zeros(5, 2, dtype=F64)}, TypeError, "data is float64 but this flow computes in float32"),
    ({"data": torch.full((5, 2), NAN)}, ValueError, r"data has NaN or inf in 5 of its 5 rows"),
    ({"data": torch.zeros(1, 2)}, ValueError, "data must hold at least 2 points"),
    ({"n_points": 0}, ValueError, "n_points must be an integer >= 1"),
    ({"figsize": (0, 3)}, ValueError, "figsize width must be > 0"),
    ({"dpi": "high"}, TypeError, "dpi must be a number"),
])
def test_save_transformation_gif_checks_everything_before_drawing(tmp_path, options, error, message):
    figures = plt.get_fignums()
    with pytest.raises(error, match=message):
        viz.save_transformation_gif(planar_flow(), tmp_path / "flow.gif", **options)
    assert not (tmp_path / "flow.gif").exists() and plt.get_fignums() == figures


def test_the_transformation_figure_refuses_a_non_flow_and_times_outside_its_range():
    with pytest.raises(TypeError, match="the learned transformation is drawn for a nflesson.Flow, got Planar"):
        viz.TransformationFigure(nf.Planar(2))
    figure = viz.TransformationFigure(planar_flow(), n_points=20, lines=3)
    for t, error, message in ((NAN, ValueError, "t must be a finite number"), (5, ValueError, "t must be a time from "
                                                                                            "0 .* to 2 .* got 5"),
                              (-1, ValueError, "got -1"), ("1", TypeError, "t must be a number, got str")):
        with pytest.raises(error, match=message):
            figure.render(t)
    assert figure.render(2).size == figure.render(0.0).size


def test_a_snapshot_figure_refuses_indices_outside_the_run(history):
    figure = viz.SnapshotFigure(history)
    last = len(history.snapshots) - 1
    for index, error in ((last + 1, ValueError), (-1, ValueError), (1.0, TypeError), (None, TypeError)):
        with pytest.raises(error, match=f"the snapshot index must be an integer from 0 to {last}"):
            figure.render(index)
    figure.render(last)


@pytest.mark.parametrize("call, error, message", [
    (lambda: viz.plot_density(MOONS.log_prob, ((4, -4), (-3, 3))), ValueError, r"bounds\[0\] must have low < high"),
    (lambda: viz.plot_density(MOONS.log_prob, ((-INF, 4), (-3, 3))), ValueError, r"bounds\[0\] low must be a finite"),
    (lambda: viz.plot_density(MOONS.log_prob, ((-4, 4),)), ValueError, r"bounds must be a sequence of 2"),
    (lambda: viz.plot_density(MOONS.log_prob, "auto"), TypeError, "bounds must be a sequence of 2"),
    (lambda: viz.plot_density(MOONS.log_prob, MOONS.bounds, size=1), ValueError, "size must be an integer >= 2"),
    (lambda: viz.plot_density(MOONS.log_prob, MOONS.bounds, size=20.0), TypeError, "size must be an integer >= 2"),
    (lambda: viz.plot_density(MOONS.log_prob, MOONS.bounds, cmap="rainbowish"), ValueError, "is not a matplotlib "
                                                                                            "colormap"),
    (lambda: viz.plot_density(MOONS.log_prob, MOONS.bounds, vmax=0), ValueError, "vmax must be > 0"),
    (lambda: viz.plot_density(MOONS.log_prob, MOONS.bounds, ax="left"), TypeError, "ax must be matplotlib Axes"),
    (lambda: viz.plot_density("moons", MOONS.bounds), TypeError, "log_prob must be a function of points"),
    (lambda: viz.plot_density(torch.zeros(5), MOONS.bounds), ValueError, r"a \(size, size\) floating grid"),
    (lambda: viz.plot_density(lambda x: x, MOONS.bounds, size=10), ValueError, r"one log-density per grid point, "
                                                                               r"shape \(100,\), got shape \(100, 2\)"),
    (lambda: viz.density_on_grid(lambda x: 0.0, MOONS.bounds, 10), TypeError, "must return a tensor"),
    (lambda: viz.grid_points(MOONS.bounds, 0), ValueError, "size must be an integer >= 2"),
    (lambda: viz.grid_points(MOONS.bounds, 5, dtype="float64"), TypeError, "dtype must be a floating torch.dtype"),
    (lambda: viz.plot_samples([[0.0, 0.0]]), TypeError, "samples must be a torch.Tensor"),
    (lambda: viz.plot_samples(torch.zeros(3, 3)), ValueError, "samples has 3 columns"),
    (lambda: viz.plot_samples(torch.zeros(3, 2), color="blurple"), ValueError, "color must be a matplotlib colour"),
    (lambda: viz.plot_samples(torch.zeros(20, 2), color=["r"] * 3), ValueError,
     r"color must be a matplotlib colour \(.*\), or one colour per point \(a sequence of 20 colours\), got 3 values "
     r"for 20 points: \['r', 'r', 'r'\]"),
    (lambda: viz.plot_samples(torch.zeros(20, 2), color="blurple"), ValueError, r"or one colour per point .* got "
                                                                                 r"'blurple'"),
    (lambda: viz.plot_density(planar_flow(), PLANE), TypeError, r"log_prob must be a function of points .* got the "
                                                                r"Flow itself .*: pass flow\.log_prob"),
    (lambda: viz.plot_density(nf.Planar(2), PLANE), TypeError, r"got the Planar itself .* a bijector has no density: "
                                                               r"wrap it as nf\.Flow\(\[layer\]\) and pass "
                                                               r"flow\.log_prob"),
    (lambda: viz.density_on_grid(planar_flow(), PLANE, 5), TypeError, r"log_prob must be a function of points "
                                                                      r"\(n, 2\).* got the Flow itself .*: pass "
                                                                      r"flow\.log_prob"),
    (lambda: viz.density_on_grid(planar_flow().forward, PLANE, 5), TypeError, r"must return a tensor of "
                                                                              r"log-densities, got tuple .* pass "
                                                                              r"flow\.log_prob"),
    (lambda: viz.plot_samples(torch.zeros(3, 2), alpha=2), ValueError, "alpha must be >= 0 and <= 1"),
    (lambda: viz.plot_samples(torch.zeros(3, 2), bounds=((0, 0), (0, 1))), ValueError, "must have low < high"),
    (lambda: viz.plot_1d_map(planar_flow()), ValueError, "a bijector of dim 1, got dim = 2"),
    (lambda: viz.plot_1d_map(lambda z: (z, z[:, 0])), TypeError, "bijector must be a 1D nflesson Bijector"),
    (lambda: viz.plot_1d_map(nf.Flow([nf.Exp()], dim=1), seed=None), TypeError, "seed must be an integer >= 0"),
    (lambda: viz.plot_1d_map(nf.Flow([nf.Exp()], dim=1), z_range=(4, -4)), ValueError, "z_range must have low < high"),
    (lambda: viz.plot_1d_map(nf.Flow([nf.Exp()], dim=1), x_range=(0, INF)), ValueError, "x_range's high end must be "
                                                                                        "a finite number"),
    (lambda: viz.plot_1d_map(nf.Flow([nf.Exp()], dim=1), n=0), ValueError, "n must be an integer >= 1"),
    (lambda: viz.plot_1d_map(nf.Flow([nf.Exp()], dim=1), axes=[None]), TypeError, "axes must be three matplotlib"),
    (lambda: viz.plot_1d_map(nf.Flow([nf.Exp()], dim=1), without_jacobian="no"), TypeError, "without_jacobian must "
                                                                                            "be True or False"),
    (lambda: viz.plot_warped_grid(planar_flow(), PLANE, lines=1), ValueError, "lines must be an integer >= 2"),
    (lambda: viz.plot_warped_grid(planar_flow(), PLANE, resolution=0), ValueError, "resolution must be an integer"),
    (lambda: viz.plot_warped_grid(lambda p: p[:, 0], PLANE), ValueError, r"transform must map points \(n, 2\) to "
                                                                         r"points \(n, 2\)"),
    (lambda: viz.plot_warped_grid(None, PLANE), TypeError, "transform must be a map of points"),
    (lambda: viz.plot_layers(nf.Planar(2), torch.zeros(3, 2)), TypeError, "flow must be a nflesson Flow, got Planar"),
    (lambda: viz.plot_layers(nf.flows.planar(1), torch.zeros(3, 1)), ValueError, "needs a flow of dim 2, got dim = 1"),
    (lambda: viz.plot_layers(planar_flow(), torch.zeros(3, 2), max_panels=0), ValueError, "max_panels must be an "
                                                                                          "integer >= 1"),
    (lambda: viz.plot_layers(planar_flow(), torch.zeros(0, 2)), ValueError, "points is empty"),
    (lambda: viz.plot_layers(planar_flow(), torch.zeros(3, 2, dtype=F64)), TypeError, "points is float64"),
    (lambda: viz.plot_loss("1, 2, 3"), TypeError, "losses must be a list of numbers"),
    (lambda: viz.plot_loss([1.0, "2"]), TypeError, r"losses\[1\] is str"),
    (lambda: viz.plot_loss([1.0, 2.0], reference="2"), TypeError, "reference must be a number, got str"),
    (lambda: viz.plot_loss([1.0, 2.0], reference=NAN), ValueError, "reference must be a finite number"),
    (lambda: viz.reference_line("3", "a label"), TypeError, "reference must be a number, got str"),
    (lambda: viz.reference_line(3.0, 5), TypeError, "reference_label must be a string"),
    (lambda: viz.loss_limits([1.0, 2.0], squash=0), ValueError, "squash must be >= 1"),
    (lambda: viz.layer_times(0, 5), ValueError, "layers must be an integer >= 1"),
    (lambda: viz.layer_times(3, 4.0), TypeError, "frames must be an integer >= 2"),
    (lambda: viz.layer_times(3, np.float64(8.0)), TypeError, r"frames must be an integer >= 2 .* got float64 "
                                                             r"(np\.float64\()?8\.0"),
    (lambda: viz.layer_times(3, np.int64(1)), ValueError, "frames must be an integer >= 2 .* got 1$"),
    (lambda: viz.position_colors(torch.zeros(3)), ValueError, r"points must have shape \(batch, dim\)"),
    (lambda: viz.plot_made(planar_flow()), TypeError, "made must be a nflesson MADE network"),
    (lambda: viz.figure_image("figure"), TypeError, "fig must be a matplotlib Figure"),
    (lambda: viz.canvas_image(None), TypeError, "canvas must be a matplotlib Agg canvas"),
    (lambda: viz.agg_figure(3), TypeError, r"figsize must be a \(width, height\) pair"),
    (lambda: viz.agg_figure((3, -1)), ValueError, "figsize height must be > 0"),
    (lambda: viz.agg_figure((3, 1), dpi=0), ValueError, "dpi must be >= 1"),
])
def test_figures_check_their_arguments_before_drawing(call, error, message):
    figures = plt.get_fignums()
    with pytest.raises(error, match=message):
        call()
    assert plt.get_fignums() == figures, "a figure was opened before the error"


def test_figures_of_a_float64_flow_are_drawn_in_its_dtype():
    flow = planar_flow().double()
    viz.plot_density(flow.log_prob, PLANE, size=10)
    viz.plot_warped_grid(flow, PLANE, lines=3, resolution=5)
    viz.plot_1d_map(nf.Flow([nf.Affine(1)]).double(), n=100)
    plt.close("all")


def test_density_grids_are_computed_without_gradients():
    grad_modes = []

    def log_prob(x):
        grad_modes.append(torch.is_grad_enabled())
        return MOONS.log_prob(x)

    flow = planar_flow()
    viz.density_on_grid(log_prob, PLANE, 5)
    viz.plot_density(log_prob, PLANE, size=5)
    plt.close("all")
    assert grad_modes == [False, False]
    assert not torch.as_tensor(viz.density_on_grid(flow.log_prob, PLANE, 5)).requires_grad


def test_frames_may_be_numpy_integers(tmp_path):
    assert np.array_equal(viz.layer_times(3, np.int64(8)), viz.layer_times(3, 8))
    assert np.array_equal(viz.layer_times(np.int32(2), np.int16(9)), viz.layer_times(2, 9))
    flow = planar_flow()
    path = viz.save_transformation_gif(flow, tmp_path / "flow.gif", frames=np.int64(3), n_points=20, lines=3)
    assert path.exists()
    player = widgets.TransformationPlayer(flow, frames=np.int64(8), n_points=20, lines=3)
    assert player.play.max == 7 and type(player.play.max) is int and len(player.times) == 8


# --- widgets ----------------------------------------------------------------------------------------

def test_training_player_refuses_what_is_not_a_history(history):
    for thing in (planar_flow(), history.losses, None):
        with pytest.raises(TypeError, match="history must be the nflesson.History that nf.fit returns"):
            widgets.TrainingPlayer(thing)
    with pytest.raises(ValueError, match="this History has no snapshots to draw"):
        widgets.TrainingPlayer(nf.History("maximum likelihood", PLANE, history.grid))
    with pytest.raises(TypeError, match="reference must be a number"):
        widgets.TrainingPlayer(history, reference="entropy")
    with pytest.raises(ValueError, match="figsize"):
        widgets.TrainingPlayer(history, figsize=(10, 0))


def test_a_history_of_a_flow_in_more_dimensions_has_no_pictures():
    torch.manual_seed(0)
    deep = nf.fit(nf.flows.linear(3), torch.randn(50, 3), steps=2, progress=False)
    with pytest.raises(ValueError, match="drawn for 1D and 2D flows, but this History is of a 3D flow"):
        viz.SnapshotFigure(deep)


@pytest.mark.parametrize("call, error, message", [
    (lambda: widgets.TransformationPlayer(nf.Planar(2)), TypeError, "TransformationPlayer shows the learned "
                                                                    "transformation of a nflesson.Flow, got Planar"),
    (lambda: widgets.TransformationPlayer("flow"), TypeError, "got str"),
    (lambda: widgets.TransformationPlayer(planar_flow(), frames=2.5), TypeError, "frames must be an integer >= 2"),
    (lambda: widgets.TransformationPlayer(planar_flow(), frames=1), ValueError, "frames must be an integer >= 2"),
    (lambda: widgets.TransformationPlayer(planar_flow(), interval=0), ValueError, r"interval \(milliseconds per "
                                                                                  r"frame\) must be an integer >= 1"),
    (lambda: widgets.Explorer(3), TypeError, "draw must be a function draw"),
    (lambda: widgets.Explorer(lambda fig, a: None, a=3), TypeError, "the control a= must be an ipywidgets value "
                                                                    "widget"),
    (lambda: widgets.Explorer(lambda fig: None, figsize="big"), TypeError, "figsize must be"),
    (lambda: widgets.one_d_map("log", 1.0, 0.0), ValueError, "kind must be one of 'affine', 'exp', 'sigmoid', got "
                                                             "'log'"),
    (lambda: widgets.one_d_map(None, 1.0, 0.0), TypeError, "kind must be one of"),
    (lambda: widgets.one_d_map("exp", 0.0, 0.0), ValueError, "scale must be > 0, got 0.0"),
    (lambda: widgets.one_d_map("exp", -2.0, 0.0), ValueError, "scale must be > 0"),
    (lambda: widgets.one_d_map("exp", 1.0, NAN), ValueError, "shift must be a finite number"),
    (lambda: widgets.one_d_map("exp", "1", 0.0), TypeError, "scale must be a number"),
    (lambda: widgets.explore_change_of_variables("log"), ValueError, "kind must be one of"),
    (lambda: widgets.draw_layer(viz.agg_figure((4, 2)), nf.Planar(3)), ValueError, "layer must act on the plane "
                                                                                   r"\(dim 2\), got dim = 3"),
    (lambda: widgets.draw_layer(viz.agg_figure((4, 2)), "planar"), TypeError, "layer must be a nflesson Bijector"),
    (lambda: widgets.draw_layer(None, nf.Planar(2)), TypeError, "fig must be a matplotlib Figure or SubFigure"),
    (lambda: widgets.draw_layer(viz.agg_figure((4, 2)), nf.Planar(2), bounds=((-3, 3),)), ValueError, "bounds must"),
    (lambda: widgets.draw_layer(viz.agg_figure((4, 2)), nf.Exp()), ValueError,
     r"layer must act on the plane \(dim 2\), got dim = None: the density panel needs a map of R\^2 onto R\^2"),
    (lambda: widgets.draw_layer(viz.agg_figure((4, 2)), nf.Sigmoid()), ValueError, "got dim = None: the density "
                                                                                   "panel needs a map of R"),
    (lambda: widgets.one_d_map("affine", 1e-50, 0), ValueError, r"scale must be from 1e-37 to 1e\+38, the scales a "
                                                                r"float32 layer holds, got 1e-50 \(log\(scale\) = "
                                                                r"-115.1: exp\(log_scale\) would underflow in float32"),
    (lambda: widgets.one_d_map("affine", 1e40, 0), ValueError, r"scale must be from 1e-37 to 1e\+38.* got 1e\+40 "
                                                               r"\(log\(scale\) = 92.1: exp\(log_scale\) would "
                                                               r"overflow to inf in float32"),
    (lambda: widgets.one_d_map("exp", np.float64(1e-300), 0), ValueError, "scale must be from 1e-37 to 1e"),
    (lambda: widgets.one_d_map("exp", INF, 0), ValueError, "scale must be a finite number, got inf"),
])
def test_widgets_check_their_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_one_d_map_keeps_every_scale_it_takes_finite_and_its_lessons_values_unchanged():
    for scale in (1e-37, 1e-20, 0.2, 1.5, 3.0, 1e20, 1e38, np.float64(2.5), 7):
        log_scale = widgets.one_d_map("affine", scale, 0.0).layers[0].log_scale
        assert torch.isfinite(log_scale).all() and torch.isfinite(log_scale.exp()).all() and log_scale.exp() > 0
    for scale in (1.0, 1.5, 3.0, 0.65):  # as before: the float32 log of the scale, bit for bit
        assert torch.equal(widgets.one_d_map("sigmoid", scale, 0.0).layers[0].log_scale.detach(),
                           torch.tensor(scale).log().reshape(1))


def test_draw_layer_refuses_a_layer_off_the_plane_before_drawing():
    fig = viz.agg_figure((4, 2))
    with pytest.raises(ValueError, match="the density panel needs a map of R"):
        widgets.draw_layer(fig, nf.Exp())
    assert fig.axes == []
    widgets.draw_layer(fig, nf.Planar(2))
    assert len(fig.axes) == 2


# --- exercises: any malformed answer is feedback, from the checker itself ----------------------------

MALFORMED = [None, "1.0", "abc", NAN, INF, -INF, [], [1.0], [1.0, 2.0], [None, None], ["a", "b"], {}, object(),
             torch.tensor(NAN), torch.tensor([NAN, 1.0]), torch.zeros(3), torch.zeros(2, 2), torch.zeros(0),
             torch.zeros(2, 2, 2), torch.tensor(1 + 2j), torch.tensor([1 + 2j, 3j]), torch.tensor(True),
             torch.tensor([True, False]), torch.zeros(2, dtype=torch.int64), torch.zeros(2, 2, dtype=torch.complex64),
             torch.zeros(2, requires_grad=True), torch.full((2, 2), INF), 10**400, -10**400, 1 + 2j, True,
             (1.0, 2.0, 3.0),
             (torch.tensor(1.0), torch.tensor(1 + 1j)), (10**400, 1.0), lambda x: x, lambda x: 1 / 0, lambda: 1,
             lambda x: "p", lambda x: x.float(), lambda x: torch.full_like(x, NAN), lambda x: x.mul_(2)]
QUESTIONS = [(n, name) for n in exercises.lessons() for name in exercises.lesson(n)]


@pytest.mark.filterwarnings("error")  # a complex answer is not cast to real with a warning either
@pytest.mark.parametrize("number, name", QUESTIONS)
def test_checkers_turn_every_malformed_answer_into_feedback(number, name):
    question = exercises.lesson(number)[name]
    for answer in MALFORMED:
        message = question.checker(answer)  # the checker itself, not only Exercise.check's safety net
        assert isinstance(message, str) and message, (answer, message)
        feedback = question.check(answer)
        assert not feedback.correct and feedback.answered and "raised" not in feedback.message or callable(answer)


def test_a_function_answer_that_fails_is_told_how_it_was_called():
    message = exercises.lesson(1)["sigmoid"].checker(lambda x: 1 / 0)
    assert message.startswith("calling your function on x = torch.linspace(0.01, 0.99, 99, dtype=torch.float64) "
                              "raised ZeroDivisionError: division by zero")


def test_check_helpers_take_numpy_numbers_and_refuse_complex_and_huge_answers():
    assert exercises.check_number(np.float32(1.0), 1.0, 1e-6) is None
    assert exercises.check_number(np.array([2.0]), 2.0, 1e-6) is None
    assert exercises.check_number(10**400, 1.0, 0.1) == "the answer is an integer too large for a float (it has 401 " \
                                                        "digits)"
    assert exercises.check_number(torch.tensor(1 + 0j), 1.0, 0.1) == "the answer should be a number, got complex"
    assert exercises.check_tensor(torch.ones(2, dtype=torch.complex64), torch.ones(2), 0.1) == \
        "the answer should hold real numbers, got a tensor of torch.complex64"
    assert exercises.check_tensor(torch.tensor([1.0, NAN]), torch.ones(2), 0.1) == \
        "the answer has NaN or inf in 1 of its 2 entries"
    assert exercises.check_tensor(np.ones(2), torch.ones(2), 0.1).endswith("got ndarray; torch.as_tensor(answer) "
                                                                           "makes one")
    assert exercises.as_float(np.float32(0.5)) == 0.5 and exercises.as_float(torch.tensor(1 + 1j)) is None
    assert exercises.as_float(10**400) == INF and exercises.as_float(torch.tensor([True])) is None


def test_lessons_and_exercises_check_their_arguments():
    for number in (1.0, "1", True, None):
        with pytest.raises(TypeError, match="the lesson number must be an integer"):
            exercises.lesson(number)
    assert exercises.lesson(np.int64(1)) is exercises.lesson(1)
    with pytest.raises(TypeError, match="checker must be a function of the answer"):
        exercises.Exercise("t", None, "hint", "answer = 1")
    with pytest.raises(TypeError, match="hint must be a string"):
        exercises.Exercise("t", lambda a: None, 3, "answer = 1")


# --- random bad arguments to the figures and widgets --------------------------------------------------

GOOD_DENSITY = viz.density_on_grid(MOONS.log_prob, MOONS.bounds, 12)


@settings(max_examples=30, deadline=None)
@given(a=BAD_VALUES, b=BAD_VALUES)
def test_random_bad_arguments_to_figures_and_widgets_raise_only_clear_errors(tmp_path_factory, a, b):
    folder = tmp_path_factory.mktemp("gifs")
    flow = planar_flow()
    before = {k: v.clone() for k, v in flow.state_dict().items()}
    figures = plt.get_fignums()
    calls = [
        lambda: viz.plot_density(a, PLANE, size=8), lambda: viz.plot_density(MOONS.log_prob, a, size=8),
        lambda: viz.plot_density(MOONS.log_prob, PLANE, size=a), lambda: viz.grid_points(a, 5),
        lambda: viz.plot_samples(a), lambda: viz.plot_samples(GOOD_POINTS, bounds=a, size=b),
        lambda: viz.plot_1d_map(a), lambda: viz.plot_1d_map(nf.Flow([nf.Exp()], dim=1), z_range=a, n=b),
        lambda: viz.plot_warped_grid(a, PLANE, lines=2, resolution=3), lambda: viz.plot_warped_grid(flow, a, lines=b),
        lambda: viz.plot_layers(flow, a), lambda: viz.plot_layers(a, GOOD_POINTS, max_panels=b),
        lambda: viz.position_colors(a), lambda: viz.plot_loss(a, reference=b), lambda: viz.loss_limits(a, b),
        lambda: viz.reference_line(a, b), lambda: viz.layer_times(a, b), lambda: viz.agg_figure(a, b),
        lambda: viz.write_gif(a, folder / "a.gif"), lambda: viz.write_gif([one_image()], a),
        lambda: viz.write_gif([one_image()], folder / "b.gif", fps=a, first=b),
        lambda: viz.save_transformation_gif(flow, folder / "c.gif", frames=a, fps=b),
        lambda: viz.save_transformation_gif(flow, a), lambda: viz.TransformationFigure(a),
        lambda: viz.TransformationFigure(flow, n_points=a, seed=b), lambda: viz.TransformationFigure(flow, data=a),
        lambda: viz.TransformationFigure(flow, bounds=a, density=b), lambda: viz.SnapshotFigure(a),
        lambda: widgets.TrainingPlayer(a), lambda: widgets.TransformationPlayer(flow, frames=a, interval=b),
        lambda: widgets.TransformationPlayer(a), lambda: widgets.one_d_map(a, 1.0, 0.0),
        lambda: widgets.one_d_map("exp", a, b), lambda: widgets.Explorer(a, control=b),
        lambda: widgets.draw_layer(viz.agg_figure((2, 1), 10), a), lambda: viz.plot_made(a),
        lambda: exercises.lesson(a),
    ]
    for call in calls:
        try:
            call()
        except (TypeError, ValueError):
            pass
        plt.close("all")
    for n, name in QUESTIONS:  # exercises: feedback for anything
        question = exercises.lesson(n)[name]
        assert isinstance(question.checker(a), str) and not question.check(b).correct
    assert all(torch.equal(before[k], v) for k, v in flow.state_dict().items())
    assert sorted(path.name for path in folder.iterdir()) in ([], ["a.gif"], ["b.gif"], ["a.gif", "b.gif"])
    assert plt.get_fignums() == figures == []
    assert np.array_equal(viz.density_on_grid(MOONS.log_prob, MOONS.bounds, 12), GOOD_DENSITY)
