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
    eval_tokens_masked : int or None
        Evaluation tokens for masked LMs, which score only the 15% of positions they mask and cost a
        fraction of a decoder's forward per token; None means ``eval_tokens``.
    readings : tuple of str
        Alternate readings (claims.md, "Readings"; :mod:`core.readings`) that run by default; the
        ``paper`` profile runs every one. Not a sample size: left out of :meth:`to_dict` (experiments
        key their caches on the readings they compute).
    """

    name: str
    collect_tokens: int
    eval_tokens: int
    collect_images: int
    eval_images: int
    seq_len: int
    batch_size: int
    eval_tokens_masked: int | None = None
    readings: tuple[str, ...] = ()

    def eval_tokens_for(self, kind: str) -> int:
        """Evaluation tokens for a text model of ``kind`` (``"causal"`` or ``"masked"``)."""
        if kind == "masked" and self.eval_tokens_masked is not None:
            return self.eval_tokens_masked
        return self.eval_tokens

    def to_dict(self) -> dict:
        """The sizes as a dict; unset optional sizes are left out (cache keys stay as they were)."""
        return {k: v for k, v in asdict(self).items() if v is not None and k != "readings"}


PROFILES: dict[str, Profile] = {
    "paper": Profile("paper", collect_tokens=100_000, eval_tokens=100_000, collect_images=5_000,
                     eval_images=1_000, seq_len=1_000, batch_size=8,
                     readings=("R1", "R2", "R3", "R4", "R5")),
    # small: sized so that the main job fits 45 minutes on 2 CPU cores (issue 2). smollm2-135m costs
    # about 2.9 ms per token and one ABL sweep is 163 evaluations, so decoders get 1,024 evaluation
    # tokens; the masked LM costs 0.37 ms per token and scores only 15% of them, so it gets 4,096.
    "small": Profile("small", collect_tokens=16_384, eval_tokens=1_024, collect_images=2_000,
                     eval_images=1_000, seq_len=256, batch_size=8, eval_tokens_masked=4_096),
    "ci": Profile("ci", collect_tokens=4_096, eval_tokens=1_024, collect_images=1_000,
                  eval_images=500, seq_len=128, batch_size=8),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name raises ``UnknownNameError`` listing the valid ones."""
    return PROFILES[check_name("profile", name, PROFILES)]
