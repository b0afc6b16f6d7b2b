"""Lesson 06's exercises and figure: each checker accepts its solution and explains typical wrong
answers; plot_made draws MADE's connections."""

import math

import matplotlib
import pytest
import torch

import nflesson as nf
from nflesson import exercises, viz

matplotlib.use("Agg")
QUESTIONS = exercises.lesson(6)
X1 = math.exp(0.5) + 1.0
LOG_DET = 0.5 + 0.3 * X1 - 0.2 * X1


def test_lesson_06_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["log_det", "passes", "zeros"]


CORRECT = [  # (exercise, another form of a right answer)
    ("zeros", 6), ("zeros", 6.0), ("zeros", torch.tensor(6)),
    ("passes", 50), ("passes", torch.tensor(50.0)),
    ("log_det", LOG_DET), ("log_det", torch.tensor(LOG_DET)),
]


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("zeros", 10, "MAY be non-zero"),
    ("zeros", 12, "both off-diagonal triangles"),
    ("zeros", 4, "diagonal"),
    ("zeros", 16, "not every entry"),
    ("zeros", 0, "unmasked"),
    ("zeros", 7, "off by"),
    ("zeros", torch.ones(4, 4), "single number"),
    ("zeros", "six", "should be a number"),
    ("passes", 5, "SCORING"),
    ("passes", 10, "each of the 5 layers"),
    ("passes", 15, "multiply"),
    ("passes", 1, "IAF"),
    ("passes", 100, "one coordinate"),
    ("passes", 500, "one pass per coordinate"),
    ("passes", 49, "off by"),
    ("log_det", 0.6, "DATA coordinates"),
    ("log_det", math.exp(LOG_DET), "logarithm"),
    ("log_det", -LOG_DET, "inverse"),
    ("log_det", 0.1 * X1, "s_1 = 0.5"),
    ("log_det", 0.5 + 0.1 * (X1 - 1.0), "includes its shift"),
    ("log_det", 2.0, "off by"),
    ("log_det", torch.ones(3), "single number"),
]


@pytest.mark.parametrize("dim, hidden", [(2, 4), (3, 6), (4, 8)])
def test_plot_made_draws_one_line_per_kept_connection(dim, hidden):
    made = nf.MADE(dim, hidden=hidden)
    fig = viz.plot_made(made, title="made")
    ax = fig.axes[0]
    kept = sum(int(m.sum()) for m in made.masks())
    assert len(ax.lines) == kept
    assert ax.get_title() == "made"
    labels = {t.get_text() for t in ax.texts}
    assert {"inputs", "outputs", "x1", f"s{dim}", f"t{dim}"} <= labels
    # units: inputs, two hidden layers, outputs
    assert len(ax.collections) == dim + 2 * hidden + 2 * dim


def test_plot_made_draws_on_given_axes():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert viz.plot_made(nf.MADE(3, hidden=6), ax) is fig
    plt.close(fig)
