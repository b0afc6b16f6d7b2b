"""The bijector interface: an invertible map with the log-determinant of its Jacobian.

Convention (as in torch.distributions): ``forward`` maps base -> data (sampling),
``inverse`` maps data -> base (scoring). Tensors are (batch, dim); each call returns the
image and ``log|det J|`` of the direction called, shape (batch,). A bijector with parameters
takes points of their dtype; a batch of 0 points gives an empty result (nflesson.checks).
"""

import itertools

from torch import nn

from .checks import check_batch


class Bijector(nn.Module):
    """Base class. Subclasses implement ``_forward(z)`` and ``_inverse(x)``, both returning
    ``(output, log_abs_det)``; the public ``forward``/``inverse`` check their input first.

    ``dim`` is the number of columns the bijector accepts (None: any).
    """

    dim = None
    noun = None  # what error messages call it (None: its class name)

    @property
    def dtype(self):
        """The floating dtype of the parameters and buffers, which inputs must have (None for a
        map without any, such as Exp: it takes float32 and float64 alike)."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
        return None

    def checked(self, points, what="input"):
        """``points`` if they are a (batch, dim) tensor of this bijector's dtype, else TypeError
        or ValueError (nflesson.checks.check_batch) naming ``what`` they are."""
        return check_batch(points, self.dim, what, owner=self.noun or type(self).__name__, dtype=self.dtype)

    def forward(self, z):
        z = self.checked(z)
        return (z.clone(), z.new_zeros(0)) if len(z) == 0 else self._forward(z)

    def inverse(self, x):
        x = self.checked(x)
        return (x.clone(), x.new_zeros(0)) if len(x) == 0 else self._inverse(x)

    def _forward(self, z):
        raise NotImplementedError

    def _inverse(self, x):
        raise NotImplementedError

    def extra_repr(self):
        return "" if self.dim is None else f"dim={self.dim}"


class Inverse(Bijector):
    """The bijector ``b`` with its two directions swapped: forward = b.inverse, inverse = b.forward.

    ``Inverse(MaskedAutoregressive(d))`` is an IAF layer: one pass to sample, d passes to score.
    """

    def __init__(self, bijector):
        super().__init__()
        if not isinstance(bijector, Bijector):
            raise TypeError(f"Inverse needs a nflesson.Bijector, got {type(bijector).__name__}")
        self.bijector = bijector
        self.dim = bijector.dim

    def _forward(self, z):
        return self.bijector._inverse(z)

    def _inverse(self, x):
        return self.bijector._forward(x)


def batch_constant(value, x):
    """Broadcast a scalar log-det (a 0-d tensor) to shape (batch,) of ``x``."""
    return value.expand(x.shape[0])
