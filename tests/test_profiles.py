"""Named sample-size profiles: lookup, per-kind evaluation tokens, and stable cache-key dicts."""
import pytest

from core.errors import UnknownNameError
from core.profiles import PROFILES, Profile, get_profile


def test_unknown_profile_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="unknown profile 'medium'") as e:
        get_profile("medium")
    for name in PROFILES:
        assert name in str(e.value)


def test_masked_lms_get_their_own_evaluation_tokens_when_set():
    p = Profile("p", collect_tokens=8, eval_tokens=4, collect_images=2, eval_images=1, seq_len=4,
                batch_size=1, eval_tokens_masked=16)
    assert p.eval_tokens_for("masked") == 16
    assert p.eval_tokens_for("causal") == 4


def test_unset_masked_tokens_fall_back_and_stay_out_of_the_dict():
    p = Profile("p", collect_tokens=8, eval_tokens=4, collect_images=2, eval_images=1, seq_len=4,
                batch_size=1)
    assert p.eval_tokens_for("masked") == 4
    # the dict feeds cache keys: a profile without the optional size keys exactly as before it existed
    assert p.to_dict() == {"name": "p", "collect_tokens": 8, "eval_tokens": 4, "collect_images": 2,
                           "eval_images": 1, "seq_len": 4, "batch_size": 1}


def test_every_profile_is_ordered_ci_small_paper():
    ci, small, paper = (get_profile(n) for n in ("ci", "small", "paper"))
    for kind in ("causal", "masked"):
        assert ci.eval_tokens_for(kind) <= small.eval_tokens_for(kind) <= paper.eval_tokens_for(kind)
    assert ci.collect_tokens <= small.collect_tokens <= paper.collect_tokens
    assert ci.eval_images <= small.eval_images <= paper.eval_images
