"""Input checks shared by bijectors, flows and targets: clear errors instead of silent broadcasts."""

import torch


def check_batch(x, dim, what="input", owner="flow"):
    """Return ``x`` if it is a floating (batch, dim) tensor, else raise ValueError saying why
    (``owner`` names what expects ``dim`` columns). ``dim=None`` accepts any number of columns.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor of shape (batch, dim), got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{what} must have a floating dtype (float32 or float64), got {x.dtype}")
    if x.dim() != 2:
        raise ValueError(
            f"{what} must have shape (batch, dim), got shape {tuple(x.shape)}; "
            "use x.reshape(-1, 1) for a batch of scalars"
        )
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{what} has {x.shape[1]} columns but this {owner} has dim = {dim}")
    return x


def check_positive(value, name):
    """Raise ValueError unless ``value`` is a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_positive_int(value, name):
    """Raise ValueError unless ``value`` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value
