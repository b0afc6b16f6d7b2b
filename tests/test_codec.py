"""nflesson.codec: exact discrete probabilities from a level-conditioned autoregressive flow,
and a lossless ANS codec driven by them (constriction)."""

import math

import numpy as np
import pytest
import torch

import nflesson as nf
from nflesson import codec


@pytest.fixture(scope="module")
def trained():
    """A tiny LevelAutoregressive flow on 16-pixel images (pixels 20..35 of the digits, the
    middle rows), trained for a few steps on the exact discrete likelihood; 100 test images."""
    torch.manual_seed(0)
    digits = nf.data.digits()
    train, test = digits.train[:, 20:36], digits.test[:100, 20:36]
    flow = nf.Flow([codec.LevelAutoregressive(16, 17, hidden=16)])
    optimiser = torch.optim.Adam(flow.parameters(), lr=2e-2)
    for _ in range(25):
        loss = -codec.log_probability(flow, train[torch.randint(0, len(train), (128,))]).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return flow, test


def test_round_trip_is_exact_for_every_image(trained):
    flow, test = trained
    data = codec.encode(flow, test)
    assert isinstance(data, bytes)
    back = codec.decode(flow, data, len(test))
    assert back.dtype == test.dtype and torch.equal(back, test)


def test_code_length_agrees_with_minus_log2_probability(trained):
    flow, test = trained
    ideal = codec.code_length(flow, test).sum().item()
    real = 8 * len(codec.encode(flow, test))
    assert abs(real - ideal) < 64  # ANS: a few bits for the whole message, plus quantisation
    assert ideal / len(test) < 16 * math.log2(17)  # better than storing the levels uniformly


def test_probabilities_are_positive_and_sum_to_one(trained):
    flow, test = trained
    table = codec.pixel_probabilities(flow, test)
    assert table.shape == (len(test), 16, 17) and table.dtype == torch.float64
    assert (table > 0).all()
    assert torch.allclose(table.sum(-1), torch.ones(len(test), 16, dtype=torch.float64), atol=1e-12)
    log_p = codec.log_probability(flow.double(), test.double())
    assert torch.allclose(log_p / math.log(2), -codec.code_length(flow, test), atol=1e-9)
    flow.float()


def test_probabilities_depend_only_on_earlier_pixels(trained):
    flow, test = trained
    changed = test[:5].clone()
    changed[:, 8:] = 16 - changed[:, 8:]
    before, after = codec.pixel_probabilities(flow, test[:5]), codec.pixel_probabilities(flow, changed)
    assert torch.equal(before[:, :9], after[:, :9]) and not torch.equal(before[:, 9:], after[:, 9:])


def test_cell_probability_is_the_flow_density_integrated_over_the_cell():
    """P(x) = integral of q over the unit cell above x, checked by quadrature in 2 pixels."""
    torch.manual_seed(1)
    layer = codec.LevelAutoregressive(2, 17, hidden=8)
    with torch.no_grad():
        for p in layer.made.parameters():
            p.normal_(0, 0.5)
    flow = nf.Flow([layer]).double()
    x = torch.tensor([[3.0, 5.0]], dtype=torch.float64)
    nodes, weights = np.polynomial.legendre.leggauss(30)  # Gauss-Legendre on [0, 1) in each pixel:
    t, w = torch.from_numpy((nodes + 1) / 2), torch.from_numpy(weights / 2)  # the density is smooth in a cell
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2) + x
    with torch.no_grad():
        integral = (flow.log_prob(grid).exp() * torch.outer(w, w).reshape(-1)).sum().item()
    exact = codec.log_probability(flow, x).exp().item()
    assert integral == pytest.approx(exact, rel=1e-9)


def test_one_pixel_edges_are_the_full_edges_at_that_pixel():
    """What the coder computes (one pixel at a time) is what log_probability computes (all at once)."""
    torch.manual_seed(3)
    layer = codec.LevelAutoregressive(6, 17, hidden=8, order=[3, 0, 5, 1, 4, 2]).double()
    with torch.no_grad():
        for p in layer.made.parameters():
            p.normal_(0, 0.5)
    levels = torch.randint(0, 17, (7, 6)).double()
    every = layer.edges(levels)
    for pixel in range(6):
        assert torch.allclose(layer.pixel_edges(levels, pixel), every[:, pixel], atol=1e-12, rtol=0)


def test_float32_density_stays_finite_when_edges_round_together():
    layer = codec.LevelAutoregressive(1, 17, hidden=4)
    with torch.no_grad():
        layer.made.net[-1].bias.copy_(torch.tensor([0.0] * 8 + [-40.0] + [0.0] * 8))  # level 8: a share of ~1e-9
    h = layer.edges(torch.zeros(1, 1))
    assert h[0, 0, 8] == h[0, 0, 9]  # in float32 the two edges of level 8 coincide
    z, log_det = layer.inverse(torch.tensor([[8.5]]))
    assert torch.isfinite(log_det).all() and log_det.item() < -80


def test_flow_round_trip_and_sampling():
    torch.manual_seed(2)
    flow = nf.Flow([codec.LevelAutoregressive(4, 17, hidden=8)]).double()
    y = nf.dequantize(torch.randint(0, 17, (6, 4)).double())
    z, log_det = flow.layers[0].inverse(y)
    back, forward_log_det = flow.layers[0](z)
    assert torch.allclose(back, y, atol=1e-9) and torch.allclose(log_det, -forward_log_det, atol=1e-9)
    assert flow.sample(5).shape == (5, 4)


def test_argument_errors(trained):
    flow, test = trained
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        codec.encode(flow, test.tolist())
    with pytest.raises(ValueError, match="shape"):
        codec.encode(flow, test[:, :5])
    with pytest.raises(ValueError, match="whole levels"):
        codec.encode(flow, test + 0.5)
    with pytest.raises(ValueError, match="whole levels"):
        codec.pixel_probabilities(flow, test + 17)
    with pytest.raises(TypeError, match="data must be bytes"):
        codec.decode(flow, "abc", 3)
    with pytest.raises(TypeError, match="n must be an integer"):
        codec.decode(flow, b"", 2.0)
    with pytest.raises(ValueError, match="n must be"):
        codec.decode(flow, b"", -1)
    with pytest.raises(ValueError, match="32-bit words"):
        codec.decode(flow, b"abc", 1)
    with pytest.raises(ValueError, match="not made by encode"):
        codec.decode(flow, codec.encode(flow, test), 3)
    with pytest.raises(TypeError, match="Flow of a LevelAutoregressive"):
        codec.encode(torch.nn.Linear(2, 2), test)
    with pytest.raises(ValueError, match="single LevelAutoregressive"):
        codec.encode(nf.flows.realnvp(16), test)
    with pytest.raises(ValueError, match="levels must be at least 2"):
        codec.LevelAutoregressive(4, 1)
