"""Real data for the course: scikit-learn's 8x8 handwritten digits (a file shipped with
scikit-learn, never downloaded), with fixed train, validation and test splits."""

import functools
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Digits:
    """scikit-learn's 8x8 handwritten digits, split once and for all.

    ``train``, ``validation``, ``test``: float32 tensors (n, 64) of integer pixel levels
    0..levels - 1, rows of the 8x8 image one after the other (``x.reshape(-1, *shape)`` gives
    the images); ``*_labels``: the digits 0..9 as int64 tensors (n,). Each ``digits()`` call
    hands out tensors of its own: changing them in place (``d.train /= 16`` changes the tensor
    before the frozen dataclass refuses the assignment) changes no other call's.
    """

    train: torch.Tensor
    validation: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor
    validation_labels: torch.Tensor
    test_labels: torch.Tensor
    shape: tuple = (8, 8)
    levels: int = 17


def digits():
    """The 1,797 8x8 digits of scikit-learn (``sklearn.datasets.load_digits``, a file shipped
    with scikit-learn: nothing is downloaded), 64 pixels with 17 levels 0..16, as a ``Digits``.

    The split is fixed and stratified by digit: ``train_test_split(..., stratify=labels,
    random_state=0)`` of scikit-learn takes 500 test images, then 297 validation images from
    the rest, leaving 1,000 for training; every digit has about the same share in each split.
    The split is made once and cached; every call returns fresh copies of its tensors (a new
    ``Digits`` of clones, cheap at 1,797 x 64), so that what one caller changes in place no
    later call sees.
    """
    return Digits(*(tensor.clone() for tensor in _splits()))


@functools.cache
def _splits():
    """The six tensors of ``Digits`` (images, then labels), loaded and split once; never handed
    out (``digits()`` clones them)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    pixels, labels = load_digits(return_X_y=True)
    rest, test, rest_labels, test_labels = train_test_split(
        pixels, labels, test_size=500, stratify=labels, random_state=0
    )
    train, validation, train_labels, validation_labels = train_test_split(
        rest, rest_labels, test_size=297, stratify=rest_labels, random_state=0
    )

    images = [torch.tensor(x, dtype=torch.float32) for x in (train, validation, test)]
    classes = [torch.tensor(y, dtype=torch.int64) for y in (train_labels, validation_labels, test_labels)]
    return tuple(images + classes)
