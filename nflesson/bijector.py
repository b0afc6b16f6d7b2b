"""The bijector interface: an invertible map with the log-determinant of its Jacobian.

Convention (as in torch.distributions): ``forward`` maps base -> data (sampling),
``inverse`` maps data -> base (scoring). Tensors are (batch, dim); each call returns the
image and ``log|det J|`` of the direction called, shape (batch,).
"""

from torch import nn

from .checks import check_batch


class Bijector(nn.Module):
    """Base class. Subclasses implement ``_forward(z)`` and ``_inverse(x)``, both returning
    ``(output, log_abs_det)``; the public ``forward``/``inverse`` check their input first.

    ``dim`` is the number of columns the bijector accepts (None: any).
    """

    dim = None

    def forward(self, z):
        return self._forward(check_batch(z, self.dim))

    def inverse(self, x):
        return self._inverse(check_batch(x, self.dim))

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
            raise ValueError(f"Inverse needs a nflesson.Bijector, got {type(bijector).__name__}")
        self.bijector = bijector
        self.dim = bijector.dim

    def _forward(self, z):
        return self.bijector._inverse(z)

    def _inverse(self, x):
        return self.bijector._forward(x)


def batch_constant(value, x):
    """Broadcast a scalar log-det (a 0-d tensor) to shape (batch,) of ``x``."""
    return value.expand(x.shape[0])
