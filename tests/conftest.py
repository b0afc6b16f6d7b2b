import dataclasses

import pytest
import torch

import nflesson as nf


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, so failures repeat."""
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _history_target_samples():
    """The pictures read a History's reference samples as ``History.target_samples``, the name
    that issue 19 gives ``History.data`` in nflesson/train.py on another branch. Until the two
    branches meet, a History here answers to the new name too; once train.py has the field,
    this does nothing and goes."""
    if "target_samples" in {f.name for f in dataclasses.fields(nf.History)}:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nf.History, "target_samples", property(lambda history: history.data), raising=False)
        yield
