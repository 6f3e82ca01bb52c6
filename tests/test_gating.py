"""CI gating on recorded verdicts (conftest._gate)."""
from __future__ import annotations

import pytest

from conftest import _gate


def test_replicated_passes():
    _gate("ABL-1", "m", "replicated", None, "")


def test_recorded_non_replication_is_an_xfail_with_the_numbers():
    with pytest.raises(pytest.xfail.Exception, match="inconclusive.*stat = 1"):
        _gate("ABL-1", "m", "inconclusive", "inconclusive", "stat = 1")


@pytest.mark.parametrize("measured,recorded", [
    ("inconclusive", None), ("contradicted", "inconclusive"), ("replicated", "contradicted")])
def test_any_other_verdict_fails(measured, recorded):
    with pytest.raises(pytest.fail.Exception, match="ABL-1 on m"):
        _gate("ABL-1", "m", measured, recorded, "")
