"""The course's data, one namespace: exact-density targets by name (``get(name)``, ``names()``,
nflesson.targets), conditional targets p(x | c) by name (the same ``get(name)``,
``conditional_names()``, nflesson.conditional_targets) and real images (``digits()``, nflesson.digits)."""

from . import conditional_targets as _conditional
from . import targets as _targets
from .conditional_targets import (BoxedNormal, ConditionalTarget, GaussiansByClass, RingByRadius, RotatedMoons,
                                  SumAndProduct, conditional_names)
from .digits import Digits, digits
from .targets import (Banana, Checkerboard, Energy, Gaussian, IsotropicMixture, Moons, Rings, Spirals, Target,
                      TwoArms, gauss_legendre, names)


def get(name):
    """The target called ``name``: one of ``names()`` (nflesson.targets) or of ``conditional_names()``
    (nflesson.conditional_targets); TypeError for a name that is not a string, ValueError for an unknown one."""
    if isinstance(name, str) and name in conditional_names():
        return _conditional.get(name)
    try:
        return _targets.get(name)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{error}; conditional targets: {', '.join(conditional_names())}") from None


__all__ = ["Banana", "BoxedNormal", "Checkerboard", "ConditionalTarget", "Digits", "Energy", "Gaussian",
           "GaussiansByClass", "IsotropicMixture", "Moons", "RingByRadius", "Rings", "RotatedMoons", "Spirals",
           "SumAndProduct", "Target", "TwoArms", "conditional_names", "digits", "gauss_legendre", "get", "names"]
