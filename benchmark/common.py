"""What several benchmarks load: a zoo model (skipping, with the reason, where it is not installed)
and seeded random token windows."""
from __future__ import annotations

import pytest
import torch

from core.errors import MissingAssetError


def load_or_skip(name: str):
    """``core.zoo.models.load_model(name)``; the calling benchmark skips naming what is missing."""
    from core.zoo.models import load_model

    try:
        return load_model(name)
    except MissingAssetError as e:
        pytest.skip(e.reason)


def random_windows(n: int, seq_len: int, seed: int = 0) -> torch.Tensor:
    """LongTensor of shape (n, seq_len): token ids drawn uniformly from [100, 40000) with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(100, 40_000, (n, seq_len), generator=g)
