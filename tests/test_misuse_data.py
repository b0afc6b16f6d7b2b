"""Misuse of the data, the metrics, dequantization, the figures, the widgets and the exercises, as a
careless learner commits it: every mistake gets a TypeError or ValueError in nflesson's words
(naming the argument, what it got and what it needs) before anything changes, and nothing is
poisoned (the rule is written in nflesson/checks.py). The flows and training loops have theirs in
test_misuse.py."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nflesson as nf
from nflesson import data

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
    (lambda: data.Gaussian("g", [0, 0], [[1, 0]], BOX), ValueError, r"cov must have shape \(2, 2\).*got shape \(1, 2\)"),
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
