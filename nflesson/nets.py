"""The networks inside the flows: the coupling layers' MLP, MADE (the autoregressive layers'
masked MLP) and the continuous flows' velocity MLP. Each takes the point first; a context c
(``context`` = k > 0: what a conditional flow is conditioned on) joins each of them in one
place, its first layer. Every network's last layer starts at zero, so that the layer using it
starts as the identity."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_batch, check_int, check_number, check_positive_int


def zero_last_layer(net):
    """Start the last Linear of ``net`` (an nn.Sequential) at zero; returns net."""
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def mlp(inputs, hidden, outputs, hidden_layers=2, context=0):
    """A ReLU network with ``hidden_layers`` hidden layers of ``hidden`` units (a coupling layer's
    conditioner) of ``inputs`` numbers and, after them, ``context`` numbers (the two joined in
    one vector); its last layer starts at zero."""
    sizes = [inputs + check_int(context, "context")] + [hidden] * check_positive_int(hidden_layers, "hidden_layers")
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU(inplace=True)]  # in place: the same numbers, one tensor fewer
    return zero_last_layer(nn.Sequential(*layers, nn.Linear(hidden, outputs)))


def soft_clamp(raw, bound):
    """bound * tanh(raw / bound): about the identity near 0, never beyond +-bound. Used for
    log-scales, so that one bad step cannot make a scale explode."""
    return bound * torch.tanh(raw / bound)


class MaskedLinear(nn.Linear):
    """y = x (W * M)^T + b: a Linear layer whose weight is multiplied by a fixed 0/1 mask M."""

    def __init__(self, mask):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation (Germain et al., 2015).

    Maps x (batch, dim) to parameters (batch, params_per_dim, dim) such that the parameters of
    coordinate i depend only on the coordinates that come before i in ``order`` (default
    0, 1, ..., dim - 1). Each unit gets a degree; a weight from a unit of degree k to a hidden
    unit of degree m is kept iff m >= k, and to an output of degree d iff d > m. Hidden degrees
    cycle through 1..dim-1, so every allowed connection exists. The output layer starts at zero.
    A context c of width ``context`` joins x at the input with degree 0, so the first layer's mask
    lets it reach every hidden unit (and through them every output): the parameters of
    coordinate i depend on c and x_<i only.
    """

    def __init__(self, dim=2, hidden=64, params_per_dim=2, order=None, hidden_layers=2, context=0):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_positive_int(hidden, "hidden")
        self.params_per_dim = check_positive_int(params_per_dim, "params_per_dim")
        check_positive_int(hidden_layers, "hidden_layers")
        check_int(context, "context")
        if order is not None and not isinstance(order, (list, tuple, range, torch.Tensor)):
            raise TypeError(f"order must be a permutation of 0..{dim - 1} (a list or a tensor), got "
                            f"{type(order).__name__}")
        order = torch.arange(dim) if order is None else torch.as_tensor(order)
        if order.dtype in (torch.bool,) or order.is_floating_point() or order.is_complex():
            raise TypeError(f"order must hold integers, got {order.dtype}")
        if order.shape != (dim,) or not torch.equal(order.sort().values, torch.arange(dim)):
            raise ValueError(f"order must be a permutation of 0..{dim - 1}, got {order.tolist()}")
        in_degrees = torch.empty(dim, dtype=torch.long)
        in_degrees[order] = torch.arange(1, dim + 1)
        hidden_degrees = torch.arange(hidden) % max(dim - 1, 1) + 1 if dim > 1 else torch.zeros(hidden, dtype=torch.long)
        out_degrees = in_degrees.repeat(params_per_dim)
        self.register_buffer("degrees", in_degrees)
        layers, previous = [], torch.cat([in_degrees, torch.zeros(context, dtype=torch.long)])  # c: degree 0
        for _ in range(hidden_layers):
            layers += [MaskedLinear(hidden_degrees[:, None] >= previous[None, :]), nn.ReLU(inplace=True)]
            previous = hidden_degrees
        layers.append(MaskedLinear(out_degrees[:, None] > previous[None, :]))
        self.net = zero_last_layer(nn.Sequential(*layers))
        self.context_size = context

    def masks(self):
        """The 0/1 masks of the layers, input side first (for drawing the connectivity)."""
        return [m.mask for m in self.net if isinstance(m, MaskedLinear)]

    def forward(self, x, context=None):
        """The parameters (batch, params_per_dim, dim) from x (batch, dim) and, for a MADE with a
        context, c (batch, k)."""
        x = check_batch(x, self.dim, "x", owner="MADE", dtype=self.net[0].weight.dtype)
        if self.context_size:
            context = check_batch(context, self.context_size, "context", owner="MADE's context", dtype=x.dtype)
            x = torch.cat([x, context], -1)
        return self.net(x).unflatten(-1, (self.params_per_dim, self.dim))


class VelocityMLP(nn.Module):
    """v(x, t): a small MLP of the point x (batch, dim) and the time t (a number, a 0-d tensor or
    one time per point, shape (batch,)), with ``hidden_layers`` hidden layers of ``hidden`` SiLU
    units (smooth, so that the divergence has the second derivatives maximum likelihood needs).
    The time enters as t, sin(k pi t) and cos(k pi t) for k = 1..``frequencies`` (Fourier
    features: they let v change quickly in t, which flow matching needs near the data). The
    output layer starts at zero: a fresh velocity is v = 0 and its flow the identity. A context c
    of width ``context`` joins x and t at the input: v(x, t, c)."""

    def __init__(self, dim, hidden=64, hidden_layers=3, frequencies=4, context=0):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_positive_int(hidden, "hidden")
        check_int(frequencies, "frequencies", low=0)
        self.register_buffer("frequencies", torch.arange(1, frequencies + 1) * math.pi, persistent=False)
        self.context_size = check_int(context, "context")
        sizes = [dim + 1 + 2 * frequencies + context] + [hidden] * check_positive_int(hidden_layers, "hidden_layers")
        modules = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            modules += [nn.Linear(n_in, n_out), nn.SiLU()]
        self.net = zero_last_layer(nn.Sequential(*modules, nn.Linear(hidden, dim)))

    def forward(self, x, t, context=None):
        x = check_batch(x, self.dim, "x", owner="velocity", dtype=self.net[0].weight.dtype)
        if isinstance(t, torch.Tensor):
            if t.dim() > 1 or t.numel() not in (1, len(x)) or not t.is_floating_point():
                raise ValueError(f"t must be a number or one time per point, shape ({len(x)},), got a tensor of "
                                 f"shape {tuple(t.shape)} and dtype {t.dtype}")
        else:
            t = check_number(t, "t")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1).expand(x.shape[0], 1)
        angles = t * self.frequencies.to(x.dtype)
        inputs = [x, t, angles.sin(), angles.cos()]
        if self.context_size:
            inputs.append(check_batch(context, self.context_size, "context", owner="velocity's context", dtype=x.dtype))
        return self.net(torch.cat(inputs, -1))
