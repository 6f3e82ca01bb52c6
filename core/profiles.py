"""Named sample-size profiles.

A profile fixes how much data every experiment uses; the claims' decision rules, seeds and bootstrap
settings never depend on it. ``paper`` is the papers' own sizes (ABL section 3.1: 100,000 evaluation
tokens, 1,000 evaluation images; the code's 100,000 collection tokens per dataset, texts cut at 1,000
tokens). ``small`` is the main job's default, ``ci`` what ``.ci/run`` uses.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import check_name


@dataclass(frozen=True)
class Profile:
    """Sample sizes of one profile.

    Attributes
    ----------
    name : str
    collect_tokens, eval_tokens : int
        Text tokens of the collection split (statistics) and of the evaluation split.
    collect_images, eval_images : int
        Images of the collection and evaluation splits.
    seq_len : int
        Tokens per text window (capped by the model's maximum length).
    batch_size : int
        Windows or images per forward pass (text batches hold ``batch_size`` windows).
    """

    name: str
    collect_tokens: int
    eval_tokens: int
    collect_images: int
    eval_images: int
    seq_len: int
    batch_size: int

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "paper": Profile("paper", collect_tokens=100_000, eval_tokens=100_000, collect_images=5_000,
                     eval_images=1_000, seq_len=1_000, batch_size=8),
    "small": Profile("small", collect_tokens=16_384, eval_tokens=4_096, collect_images=2_000,
                     eval_images=1_000, seq_len=256, batch_size=8),
    "ci": Profile("ci", collect_tokens=4_096, eval_tokens=1_024, collect_images=1_000,
                  eval_images=500, seq_len=128, batch_size=8),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name raises ``UnknownNameError`` listing the valid ones."""
    return PROFILES[check_name("profile", name, PROFILES)]
