"""nflesson: the small, fully tested PyTorch package behind the normalizing-flows course."""

from . import data, flows, train
from .train import History, fit, fit_reverse_kl
from .autoregressive import MADE, MaskedAutoregressive
from .bijector import Bijector, Inverse
from .coupling import AffineCoupling
from .elementwise import ActNorm, Affine, Exp, Sigmoid
from .flow import Flow
from .metrics import Gap, gap, reverse_gap
from .linear import Linear, LULinear, Permute
from .planar_radial import Planar, Radial
from .spline import RationalQuadraticSpline, SplineAutoregressive, SplineCoupling

__all__ = [
    "ActNorm", "Affine", "AffineCoupling", "Bijector", "Exp", "Flow", "Inverse", "Linear",
    "LULinear", "MADE", "MaskedAutoregressive", "Permute", "Planar", "Radial", "RationalQuadraticSpline",
    "Sigmoid", "SplineAutoregressive", "SplineCoupling",
    "Gap", "History", "data", "fit", "fit_reverse_kl", "flows", "gap", "reverse_gap", "train",
]
