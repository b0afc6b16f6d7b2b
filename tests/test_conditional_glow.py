"""nflesson.flows.glow(..., context=k): a class-conditional Glow, in float64. Round trips, log-dets
against the autograd Jacobian in x for a fixed context, context = 0 the unconditional Glow as it
was, the context reaching only the coupling layers, and errors."""

import pytest
import torch
from torch.autograd.functional import jacobian

import nflesson as nf
from cases import randomize, real_points

K = 3


def conditional_glow(dim=4, layers=2, context=K):
    torch.manual_seed(0)
    return randomize(nf.flows.glow(dim, layers=layers, hidden=8, context=context).double(), 0.3)


def contexts(n, seed=5):
    return torch.randn(n, K, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_round_trips_and_log_dets_for_each_context():
    flow, x, c = conditional_glow(), real_points(12, 4), contexts(12)
    z, inverse_log_det = flow.inverse(x, c)
    back, forward_log_det = flow(z, c)
    torch.testing.assert_close(back, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(forward_log_det, -inverse_log_det, atol=1e-10, rtol=0)
    for i in range(4):
        jac = jacobian(lambda u: flow(u[None], c[i])[0][0], z[i])
        assert abs(torch.linalg.slogdet(jac).logabsdet.item() - forward_log_det[i].item()) < 1e-9
    x_sampled, log_q = flow.sample_and_log_prob(6, contexts(6))
    torch.testing.assert_close(log_q, flow.log_prob(x_sampled, contexts(6)), atol=1e-9, rtol=0)


def test_only_the_coupling_layers_read_the_context():
    flow = nf.flows.glow(6, layers=3, hidden=8, context=K)
    assert flow.context_size == K and len(flow.layers) == 9
    for layer in flow.layers:
        expected = K if isinstance(layer, nf.AffineCoupling) else 0
        assert layer.context_size == expected, layer
    pixels = nf.Flow([*flow.layers, nf.LogitPixels(17)])
    assert pixels.context_size == K


def test_context_zero_is_the_unconditional_glow_as_it_was():
    torch.manual_seed(0)
    plain = nf.flows.glow(8, layers=2, hidden=8)
    torch.manual_seed(0)
    zero = nf.flows.glow(8, layers=2, hidden=8, context=0)
    x = torch.randn(5, 8)
    assert zero.context_size == 0
    for a, b in zip(plain.state_dict().values(), zero.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(plain.log_prob(x), zero.log_prob(x))


def test_the_context_changes_the_density_and_gradients_reach_it():
    flow, x = conditional_glow(), real_points(8, 4)
    c = contexts(8).requires_grad_(True)
    flow.log_prob(x, c).sum().backward()
    assert c.grad is not None and c.grad.abs().sum() > 0
    with torch.no_grad():
        first, second = (flow.log_prob(x, one) for one in contexts(2))
    assert (first - second).abs().max() > 1e-3
    torch.manual_seed(1)
    one = flow.sample(5, contexts(1)[0])
    torch.manual_seed(1)
    rows = flow.sample(5, contexts(1)[0].expand(5, K))
    assert one.shape == (5, 4) and torch.equal(one, rows)


def test_a_one_hot_label_trains_through_fit():
    torch.manual_seed(0)
    flow = nf.Flow([*nf.flows.glow(4, layers=2, hidden=8, context=2).layers, nf.LogitPixels(17)])
    labels = torch.arange(40) % 2
    zero, one = torch.tensor([2.0, 3.0, 4.0, 5.0]), torch.tensor([12.0, 11.0, 10.0, 9.0])
    levels = torch.where(labels[:, None] == 0, zero, one)
    history = nf.fit(flow, levels, context=torch.eye(2)[labels], transform=nf.dequantize, steps=60, lr=1e-2,
                     batch_size=40, snapshot_every=60, progress=False)
    assert history.losses[-1] < history.losses[0]
    with torch.no_grad():
        y = nf.dequantize(levels[:2], torch.Generator().manual_seed(0))  # a 0 and a 1
        scores = torch.stack([flow.log_prob(y, context=torch.eye(2)[k]) for k in range(2)], -1)
    assert torch.equal(scores.argmax(-1), torch.tensor([0, 1]))  # Bayes' rule tells them apart


def test_errors():
    calls = [
        (lambda: nf.flows.glow(4, context=-1), ValueError, "context must be an integer >= 0"),
        (lambda: nf.flows.glow(4, context=1.5), TypeError, "context must be an integer"),
        (lambda: nf.flows.glow(4, context=2).log_prob(torch.randn(3, 4)), ValueError,
         "conditional on a context of width 2: pass context=c"),
        (lambda: nf.flows.glow(4, context=2).log_prob(torch.randn(3, 4), torch.randn(3, 3)), ValueError,
         "context has 3 columns"),
    ]
    for call, error, message in calls:
        with pytest.raises(error, match=message):
            call()
