"""The course's data, one namespace: exact-density targets by name (``get(name)``, ``names()``,
nflesson.targets) and real images (``digits()``, nflesson.digits)."""

from .digits import Digits, digits
from .targets import (Banana, Checkerboard, Energy, Gaussian, IsotropicMixture, Moons, Rings, Spirals, Target,
                      TwoArms, gauss_legendre, get, names)

__all__ = ["Banana", "Checkerboard", "Digits", "Energy", "Gaussian", "IsotropicMixture", "Moons", "Rings", "Spirals",
           "Target", "TwoArms", "digits", "gauss_legendre", "get", "names"]
