"""Readings: where the papers are ambiguous, run as sensitivity analyses (claims.md, "Readings").

Each point of :data:`READINGS` has a primary reading, which every verdict uses, and an alternate,
which runs beside it: a claim's result then carries the alternate's own verdict and numbers, and the
claim is ``robust`` on a model when every alternate that ran agrees with the primary verdict,
``reading-dependent`` when one does not. An alternate never replaces the primary verdict.

Which alternates run: ``--readings all`` (every one), ``--readings primary`` (none), a comma list
(``R1,R3``), or the profile's default (:attr:`core.profiles.Profile.readings`: every one in
``paper``, what fits the budget in ``small``); the ones a run skipped are listed in the report.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import UnknownNameError


@dataclass(frozen=True)
class Reading:
    """One ambiguous point: where it is, the primary reading, the alternate, the claims it touches."""

    id: str
    where: str
    primary: str
    alternate: str
    claims: tuple[str, ...]


READINGS: dict[str, Reading] = {r.id: r for r in (
    Reading("R1", "MOD search, bracket closed at adjacent counts",
            "the upper count (smallest count that reaches the target)",
            "the lower count (the authors' code returns it)",
            ("MOD-1", "MOD-2", "MOD-3", "MOD-4", "MOD-5", "MOD-6", "MOD-7")),
    Reading("R2", "MOD Eq. 1 orientation", "the code's mean_{D_u}/(eps + mean_{D_r})",
            "the printed mean_{D_r}/(eps + mean_{D_u})",
            ("MOD-1", "MOD-2", "MOD-3", "MOD-4", "MOD-5", "MOD-6", "MOD-7", "MOD-8", "MOD-9", "MOD-10")),
    Reading("R3", "BCL replacement value",
            "per token, the mean of the layer's residual neurons on the live hidden state (authors' code)",
            "each neuron's own mean over the collection split (mean ablation as in ABL)",
            ("BCL-2", "BCL-3", "BCL-4", "BCL-5")),
    Reading("R4", "BCL random_position baseline",
            "random indices, each in every layer, until the count matches",
            "the cluster's indices kept, each moved to a random layer",
            ("BCL-3", "BCL-5")),
    Reading("R5", "BCL top-activating tokens",
            "top 10 of the mean of the cluster's L2-normalised rows",
            "top 10 of the sum of its raw rows (authors' code)",
            ("BCL-2", "BCL-3", "BCL-4", "BCL-5", "BCL-8")),
)}

#: Values of ``--readings`` besides reading ids.
KEYWORDS = ("default", "all", "primary")


def parse_readings(option: str | None, default: Iterable[str]) -> frozenset[str]:
    """The alternates to run, from a ``--readings`` value.

    Parameters
    ----------
    option : str or None
        ``"default"`` or None (the profile's ``default``), ``"all"``, ``"primary"`` (none), or a
        comma-separated list of reading ids (``"R1,R3"``).
    default : iterable of str
        The profile's default reading ids.

    Returns
    -------
    frozenset of str

    Raises
    ------
    UnknownNameError
        For a name that is neither a reading id nor a keyword (the message lists the valid ones).
    """
    if option is None or option == "default":
        names = list(default)
    elif option == "all":
        return frozenset(READINGS)
    elif option == "primary":
        return frozenset()
    else:
        names = [n.strip() for n in option.split(",") if n.strip()]
    for n in names:
        if n not in READINGS:
            raise UnknownNameError("reading", n, [*READINGS, *KEYWORDS])
    return frozenset(names)


def robustness(primary: str, alternates: dict[str, dict]) -> str | None:
    """``"robust"`` if every alternate's verdict equals ``primary``, ``"reading-dependent"`` if one
    differs, None when no alternate ran.

    Parameters
    ----------
    primary : str
        The primary verdict.
    alternates : dict of reading id to dict
        Each with a ``"verdict"``.
    """
    if not alternates:
        return None
    return "robust" if all(a.get("verdict") == primary for a in alternates.values()) else "reading-dependent"


def skipped_for(claim: str, ran: Iterable[str]) -> list[str]:
    """Reading ids that touch ``claim`` and did not run."""
    ran = set(ran)
    return [r.id for r in READINGS.values() if claim in r.claims and r.id not in ran]
