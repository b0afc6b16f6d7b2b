"""nflesson: the small, fully tested PyTorch package behind the normalizing-flows course.

``import nflesson as nf`` gives the whole API; ``nf.viz`` (figures, GIFs) and ``nf.widgets``
(players and explorers) load matplotlib and ipywidgets on first use, not at import.
"""

import importlib

from . import codec, continuous, data, dequantization, flows, history, nets, threads, train, transformers, vae
from .history import History
from .train import TrainingError, TrainingWarning, fit, fit_flow_matching, fit_reverse_kl
from .autoregressive import Autoregressive, MaskedAutoregressive, SplineAutoregressive
from .bijector import Bijector, Inverse
from .codec import LevelAutoregressive
from .continuous import ContinuousFlow, flow_matching_loss
from .coupling import AffineCoupling, Coupling, SplineCoupling
from .dequantization import LogitPixels, bits_per_dim, dequantize, dequantized_log_likelihood
from .elementwise import ActNorm, Affine, Exp, Sigmoid
from .flow import Flow
from .metrics import Coverage, Gap, coverage, gap, reverse_gap
from .linear import Linear, LULinear, Permute
from .nets import MADE, VelocityMLP
from .planar_radial import Planar, Radial
from .spline import RationalQuadraticSpline
from .transformers import AdditiveTransformer, AffineTransformer, SplineTransformer
from .vae import VAE, AmortizedAffine, AmortizedPlanar, grid_posterior, importance_weighted_bound, kl_on_grid

__all__ = [
    "ActNorm", "AdditiveTransformer", "Affine", "AffineCoupling", "AffineTransformer", "Autoregressive", "Bijector",
    "ContinuousFlow", "Coupling", "Coverage", "Exp", "Flow", "Inverse", "LevelAutoregressive", "Linear", "LogitPixels", "LULinear", "MADE",
    "MaskedAutoregressive", "Permute", "Planar", "Radial", "RationalQuadraticSpline", "Sigmoid",
    "SplineAutoregressive", "SplineCoupling", "SplineTransformer", "VelocityMLP",
    "Gap", "History", "TrainingError", "TrainingWarning", "bits_per_dim", "codec", "continuous", "coverage", "data",
    "dequantization", "dequantize",
    "dequantized_log_likelihood", "fit", "fit_flow_matching", "fit_reverse_kl", "flow_matching_loss", "flows", "gap",
    "history", "nets", "reverse_gap", "threads", "train", "transformers", "viz", "widgets",
    "AmortizedAffine", "AmortizedPlanar", "VAE", "grid_posterior", "importance_weighted_bound", "kl_on_grid", "vae",
]

_ON_FIRST_USE = {"viz", "widgets"}


def __getattr__(name):
    """``nf.viz`` and ``nf.widgets``, imported the first time they are used."""
    if name in _ON_FIRST_USE:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
