"""Lossless compression with a flow: exact discrete probabilities and an entropy coder.

A flow has a density q(y) on the dequantized pixels y = x + u. Its probability of the integer
image x is the mass of the unit cell above it, P(x) = integral of q over [x, x + 1), which a
general flow cannot compute. An autoregressive flow whose conditioner reads only the *levels*
(the integer parts) of the pixels before i can: with z_i = g_i(y_i; theta_i(x_<i)) monotone in
y_i and a standard normal base, q(y) = prod_i q_i(y_i | x_<i), each factor the density of a 1D
flow with CDF F_i(t) = Phi(g_i(t)), so

    P(x_i = k | x_<i) = F_i(k + 1) - F_i(k),        P(x) = prod_i P(x_i | x_<i),

exactly (no bound). ``LevelAutoregressive`` is that layer; ``pixel_probabilities`` computes the
table; ``encode`` and ``decode`` drive an ANS coder (the ``constriction`` library, installed
with the ``course`` extra) with it, pixel by pixel, the decoder recomputing each pixel's table
from the pixels it has already decoded.
"""

import copy
import math
import numbers

import numpy as np
import torch

from .bijector import Bijector
from .checks import check_positive_int, type_name
from .flow import Flow
from .nets import MADE

__all__ = ["LevelAutoregressive", "code_length", "decode", "encode", "log_probability", "pixel_probabilities"]


MIN_SHARE = 1e-9  # the smallest probability of a level (Phi^-1(1e-9) = -6.0, inside [-levels/2, levels/2])


class LevelAutoregressive(Bijector):
    """An autoregressive flow layer on dequantized pixels y in [0, levels) whose MADE reads only
    the levels floor(y) of the pixels before each one (in ``order``, default 0..dim-1), and
    maps each pixel's cell [k, k + 1) linearly onto [h_ik, h_i,k+1] (data -> base):

        z_i = h_ik + (h_i,k+1 - h_ik) (y_i - k),   k = floor(y_i),   h_i = h(floor(y_<i)),

    with edges h_i0 = -levels/2 < ... < h_i,levels = levels/2 (a softmax of the MADE's outputs
    shares out the interval) and the identity, shifted by levels/2, outside [0, levels).
    Triangular, so log|det J| = sum_i log(h_i,k+1 - h_ik). Since h_i sees only levels, the
    conditional CDF of pixel i at a cell edge is Phi(h_ik) and
    P(x_i = k | x_<i) = Phi(h_i,k+1) - Phi(h_ik) exactly (``pixel_probabilities``,
    ``log_probability``). Put it alone in a ``Flow`` (standard normal base). Starts as the
    identity shifted by -levels/2: every pixel a standard normal centred mid-range."""

    def __init__(self, dim=64, levels=17, hidden=64, order=None):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.levels = check_positive_int(levels, "levels")
        if self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {levels!r}")
        self.made = MADE(self.dim, hidden, params_per_dim=self.levels, order=order)

    def edges(self, levels):
        """h, (batch, dim, levels + 1): where each pixel's cell edges 0..levels land in z, from
        the whole levels (batch, dim) of the pixels (pixel i's edges read only those before it).
        The MADE gives logits; with p = softmax (each share at least MIN_SHARE), the inner edges
        are h_k = Phi^-1(p_0 + ... + p_k-1), taken from the upper tail, -Phi^-1(p_k + ... ),
        above the median (no rounding near 1), so that Phi(h_k+1) - Phi(h_k) = p_k."""
        return self._edges_from_logits(self.made(self._scaled(levels)).transpose(-1, -2))

    def _scaled(self, levels):
        """The MADE's input: the levels 0..levels-1 mapped onto [-1, 1]."""
        return levels * (2 / (self.levels - 1)) - 1

    def _edges_from_logits(self, logits):
        """The edges (..., levels + 1) from the MADE's logits (..., levels) of one or more pixels."""
        p = MIN_SHARE + (1 - MIN_SHARE * self.levels) * torch.softmax(logits, dim=-1)
        below = torch.cumsum(p, dim=-1)[..., :-1]
        above = torch.flip(torch.cumsum(torch.flip(p, (-1,)), dim=-1), (-1,))[..., 1:]
        lower = below < 0.5
        tail = torch.special.ndtri(torch.where(lower, below, above).clamp(max=0.5))  # one Phi^-1 per edge
        inner = torch.where(lower, tail, -tail)
        end = inner.new_full(inner.shape[:-1] + (1,), self.levels / 2)
        return torch.cat([-end, inner.clamp(-self.levels / 2, self.levels / 2), end], dim=-1)

    def pixel_edges(self, levels, pixel):
        """The edges (batch, levels + 1) of the one pixel ``pixel`` (an index into 0..dim-1),
        from the levels (batch, dim) (only those before ``pixel`` in the order matter): the
        MADE's hidden layers in full, but only this pixel's rows of its output layer, so a
        coder that needs one pixel at a time pays for one pixel's softmax and Phi^-1, not dim."""
        net = self.made.net
        hidden = net[:-1](self._scaled(levels))
        last = net[-1]
        rows = torch.arange(self.levels, device=hidden.device) * self.dim + pixel  # output (levels, dim), flattened
        logits = torch.nn.functional.linear(hidden, (last.weight * last.mask)[rows], last.bias[rows])
        return self._edges_from_logits(logits)

    def _map(self, y, h):
        """z and log dz/dy for data-side points y given the edges h."""
        k = torch.floor(y).clamp(0, self.levels - 1)
        low, high = h.gather(-1, k.long()[..., None]).squeeze(-1), h.gather(-1, k.long()[..., None] + 1).squeeze(-1)
        inside = (y >= 0) & (y < self.levels)
        z = torch.where(inside, low + (high - low) * (y - k), y - self.levels / 2)
        # In float32 two edges can round together (a share of about 1e-9 near the median is
        # narrower than float32's spacing there): the cell's width is then 0 and its density
        # would be log 0 = -inf. The width is floored at the dtype's smallest normal number
        # instead (a finite, very low density, about -87 nats per such pixel in float32); the
        # probabilities the codec uses are computed in float64, where this does not happen.
        width = (high - low).clamp_min(torch.finfo(h.dtype).tiny)
        return z, torch.where(inside, width.log(), torch.zeros_like(y))

    def _inverse(self, y):
        z, log_derivative = self._map(y, self.edges(torch.floor(y).clamp(0, self.levels - 1)))
        return z, log_derivative.sum(-1)

    def _forward(self, z):
        y = torch.zeros_like(z)
        for _ in range(self.dim):  # after pass k the first k pixels (in order) are final
            h = self.edges(torch.floor(y).clamp(0, self.levels - 1))
            k = (h[..., 1:-1] <= z[..., None]).sum(-1).to(z.dtype)
            low = h.gather(-1, k.long()[..., None]).squeeze(-1)
            high = h.gather(-1, k.long()[..., None] + 1).squeeze(-1)
            inside = (z >= -self.levels / 2) & (z < self.levels / 2)
            y = torch.where(inside, k + ((z - low) / (high - low)).clamp(0, 1 - 1e-7), z + self.levels / 2)
        return y, -self._map(y, h)[1].sum(-1)

    def extra_repr(self):
        return f"dim={self.dim}, levels={self.levels}"


def _layer(flow):
    """The LevelAutoregressive of ``flow`` (a Flow holding only that layer, or the layer)."""
    if isinstance(flow, LevelAutoregressive):
        return flow
    if isinstance(flow, Flow):
        layers = list(flow.layers)
        if len(layers) == 1 and isinstance(layers[0], LevelAutoregressive) and flow.custom_base is None:
            return layers[0]
        raise ValueError("flow must be a Flow of a single LevelAutoregressive layer with the standard normal "
                         "base (only then is each pixel's conditional CDF exact), got layers "
                         f"{[type(layer).__name__ for layer in layers]}"
                         f"{' and a custom base' if flow.custom_base is not None else ''}")
    raise TypeError(f"flow must be an nflesson Flow of a LevelAutoregressive layer, got {type_name(flow)}")


def _float64(layer):
    """A float64 copy of ``layer`` in eval mode: every probability is computed in float64."""
    return copy.deepcopy(layer).double().eval()


def _check_images(images, layer, what="images"):
    """``images`` as a float64 (n, dim) tensor of whole levels 0..levels-1, or a clear error."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of shape (n, {layer.dim}) holding pixel levels, "
                        f"got {type_name(images)}")
    if images.dim() != 2 or images.shape[1] != layer.dim:
        raise ValueError(f"{what} must have shape (n, {layer.dim}), got shape {tuple(images.shape)}")
    if images.is_complex() or images.dtype == torch.bool:
        raise TypeError(f"{what} must hold real pixel levels, got dtype {images.dtype}")
    x = images.detach().cpu().double()
    bad = ~torch.isfinite(x) | (x != x.round()) | (x < 0) | (x > layer.levels - 1)
    if bad.any():
        row, column = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{what} must hold whole levels 0..{layer.levels - 1}; {what}[{row}, {column}] is "
                         f"{images[row, column].item()!r}")
    return x


def _log_masses(layer, levels):
    """log P(x_i = k | x_<i), (n, dim, levels), in the layer's dtype, from whole levels (n, dim):
    log(Phi(h_k+1) - Phi(h_k)), each difference taken on the side of 0 where it does not
    cancel, then normalised (the base's mass beyond +-levels/2, about 2e-17, is dropped)."""
    return _log_masses_from_edges(layer.edges(levels))


def _log_masses_from_edges(h):
    """log(Phi(h_k+1) - Phi(h_k)) over the last axis of the edges h (..., levels + 1), normalised."""
    below, above = torch.special.ndtr(h), torch.special.ndtr(-h)  # Phi at each edge, and 1 - Phi
    mass = torch.where(h[..., :-1] > 0, above[..., :-1] - above[..., 1:], below[..., 1:] - below[..., :-1])
    log_mass = mass.clamp_min(torch.finfo(mass.dtype).tiny).log()
    return log_mass - log_mass.logsumexp(-1, keepdim=True)


def log_probability(flow, images):
    """log P(x) = sum_i log P(x_i | x_<i) in nats, (n,), the exact discrete log-likelihood of the
    images (n, dim) of whole levels under ``flow`` (a Flow of one ``LevelAutoregressive``), in
    the flow's dtype and differentiable: minimise -log_probability(...).mean() to train the flow
    on the discrete data itself, with no dequantization bound. The edges are built so that
    Phi(h_k+1) - Phi(h_k) is the share p_k of the MADE's softmax (``LevelAutoregressive.edges``),
    so log P(x_i = k | x_<i) is read from the shares directly: the same numbers as the CDF
    differences of ``pixel_probabilities`` (to rounding, and the base's ~1e-17 beyond the ends),
    without the Phi^-1 / Phi round trip, which makes training several times faster."""
    layer = _layer(flow)
    x = _check_images(images, layer).to(next(layer.parameters()).dtype)
    logits = layer.made(layer._scaled(x)).transpose(-1, -2)
    log_shares = torch.logaddexp(torch.log_softmax(logits, dim=-1) + math.log1p(-MIN_SHARE * layer.levels),
                                 torch.full_like(logits, math.log(MIN_SHARE)))
    return log_shares.gather(-1, x.long()[..., None]).squeeze(-1).sum(-1)


def pixel_probabilities(flow, images):
    """The exact table P(x_i = k | x_<i) = F_i(k + 1) - F_i(k), shape (n, dim, levels), float64,
    for every pixel i of every image, with F_i(t) = Phi(g_i(t)) the conditional CDF of the
    dequantized pixel under ``flow`` (a Flow of one ``LevelAutoregressive``). Each row sums to
    1 and every entry is > 0; log2 of the entries at the images' own levels, summed over the
    pixels, is log2 P(x), the ideal code length's negative."""
    layer = _layer(flow)
    x = _check_images(images, layer)
    with torch.no_grad():
        return _log_masses(_float64(layer), x).exp()


def code_length(flow, images):
    """-log2 P(x) in bits for each image, (n,) float64: the length an ideal entropy coder needs."""
    table = pixel_probabilities(flow, images)
    levels = images.detach().cpu().long()
    return -table.gather(-1, levels[..., None]).squeeze(-1).log2().sum(-1)


def _constriction():
    try:
        import constriction
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError("nflesson's codec needs the constriction package (an ANS entropy coder), part of the "
                          "course extra: pip install \"nflesson[course]\" (or pip install constriction)") from error
    return constriction


def _tables_at(layer, known, pixel):
    """P(x_pixel = k | the pixels before it), (n, levels), from ``known`` (n, dim) in which only
    the pixels before ``pixel`` (in the layer's order) are filled in, the rest 0. Only this
    pixel's table is computed (``LevelAutoregressive.pixel_edges``). The encoder and the decoder
    both call this, with the same ``known`` at each step, so their tables agree bit for bit."""
    return _log_masses_from_edges(layer.pixel_edges(known, pixel)).exp()


def _order(layer):
    return torch.argsort(layer.made.degrees).tolist()


def encode(flow, images):
    """The images (n, dim) of pixel levels as bytes: an ANS code (constriction's AnsCoder with a
    Categorical model per pixel) of every pixel under P(x_i = k | x_<i) from ``flow``, pixel
    by pixel in the flow's order, the n images side by side. Each table is computed exactly as
    ``decode`` will recompute it (float64, from the pixels before it, the rest set to 0), so
    the decoder's quantised probabilities match bit for bit. Takes about -log2 P(x) bits per
    image plus a few bits for the whole message (``code_length``)."""
    layer = _layer(flow)
    x = _check_images(images, layer)
    constriction = _constriction()
    layer = _float64(layer)
    order = _order(layer)
    known = torch.zeros_like(x)
    tables, symbols = [], []
    with torch.no_grad():
        for pixel in order:
            tables.append(_tables_at(layer, known, pixel))
            symbols.append(x[:, pixel])
            known[:, pixel] = x[:, pixel]
    coder = constriction.stream.stack.AnsCoder()
    family = constriction.stream.model.Categorical(perfect=False)
    coder.encode_reverse(torch.cat(symbols).numpy().astype(np.int32), family, np.ascontiguousarray(torch.cat(tables).numpy()))
    return coder.get_compressed().tobytes()


def decode(flow, data, n):
    """The ``n`` images that ``encode(flow, images)`` turned into ``data`` (bytes), as a float
    tensor (n, dim) of pixel levels, in the flow's dtype. Decodes pixel by pixel in the flow's
    order, for all n images at once: each step recomputes P(x_i = k | x_<i) from the pixels
    decoded so far (dim network passes in all). Raises ValueError if ``data`` was not made by
    ``encode`` with this flow and this n (as far as the coder can tell)."""
    layer = _layer(flow)
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be bytes (what encode returns), got {type_name(data)}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer >= 0 (the number of images encoded), got {type_name(n)} {n!r}")
    if n < 0:
        raise ValueError(f"n must be an integer >= 0 (the number of images encoded), got {n!r}")
    if len(data) % 4:
        raise ValueError(f"data must be what encode returned (a whole number of 32-bit words), got {len(data)} bytes")
    constriction = _constriction()
    dtype = next(layer.parameters()).dtype
    layer = _float64(layer)
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(bytes(data), dtype=np.uint32).copy())
    family = constriction.stream.model.Categorical(perfect=False)
    known = torch.zeros(int(n), layer.dim, dtype=torch.float64)
    with torch.no_grad():
        for pixel in _order(layer):
            table = _tables_at(layer, known, pixel)
            known[:, pixel] = torch.from_numpy(coder.decode(family, np.ascontiguousarray(table.numpy())).astype(np.float64))
    if not coder.is_empty():
        raise ValueError(f"data holds more than {n} images' worth of code: it was not made by encode with this flow "
                         "and this n")
    return known.to(dtype)
