"""Named sample-size profiles: lookup, per-kind evaluation tokens, and stable cache-key dicts."""
import pytest

from core.data.splits import split_indices
from core.abl import ablation
from core.errors import UnknownNameError
from core.mod import subsets as mod_subsets
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


def test_the_paper_sizes_are_typed_fields_of_every_named_profile_and_stay_out_of_its_dict():
    from core.profiles import BclSizes, ModSizes

    for profile in PROFILES.values():
        assert isinstance(profile.mod, ModSizes) and isinstance(profile.bcl, BclSizes)
        assert profile.sizes_of("mod") is profile.mod and profile.sizes_of("bcl") is profile.bcl
        assert "mod" not in profile.to_dict() and "bcl" not in profile.to_dict()  # ABL's key: its own sizes
        hash(profile)  # frozen all the way down
    ci, paper = get_profile("ci"), get_profile("paper")
    # the MOD key's dict, by hand: a family size only where one is set, as a {prefix: tokens} dict
    assert ci.mod.to_dict() == {"text_subsets": mod_subsets.CI_TEXT_SUBSETS, "collect_tokens": 512,
                                "eval_tokens": 256, "eval_seq_len": 16, "eval_doc_windows": 1,
                                "collect_images": 100, "eval_images": 100, "random_cross_pruning_text": False}
    assert paper.mod.to_dict()["collect_tokens_by_family"] == {"mmlu:": 3000}
    assert ci.bcl.to_dict()["methods"] == ("filter",) and paper.bcl.max_clusters is None


def test_a_profile_without_paper_sizes_says_so():
    p = Profile("p", collect_tokens=8, eval_tokens=4, collect_images=2, eval_images=1, seq_len=4, batch_size=1)
    with pytest.raises(ValueError, match="profile 'p' has no MOD sizes"):
        p.sizes_of("mod")
    with pytest.raises(ValueError, match="profile 'p' has no MOD sizes"):
        mod_subsets.subsets_for("causal", "small", p)
    with pytest.raises(UnknownNameError, match="abl"):
        get_profile("ci").sizes_of("abl")


def test_every_profile_is_ordered_ci_small_paper():
    ci, small, paper = (get_profile(n) for n in ("ci", "small", "paper"))
    for kind in ("causal", "masked"):
        assert ci.eval_tokens_for(kind) <= small.eval_tokens_for(kind) <= paper.eval_tokens_for(kind)
    assert ci.collect_tokens <= small.collect_tokens <= paper.collect_tokens
    assert ci.eval_images <= small.eval_images <= paper.eval_images


# ------------------------------------------------------------------------------------------------
# Sample design (claims.md): every text evaluation set spans the profile's minimum of documents
# ------------------------------------------------------------------------------------------------

def _smollm2_tokenizer():
    """SmolLM2's tokenizer from its converted model folder in the cache, or None when not built yet."""
    import transformers

    from core.cache import cache_dir

    folders = sorted(p for p in cache_dir("models").glob("smollm2-135m-*") if (p / "tokenizer.json").is_file())
    return transformers.AutoTokenizer.from_pretrained(folders[-1]) if folders else None


def _evaluation_documents(profile: Profile, tokenizer, kind: str, *, max_length: int | None = None) -> list[dict]:
    """Distinct documents of every text evaluation set a profile builds on the small tier's data.

    Builds the sets exactly as the experiments do (:func:`core.abl.ablation.eval_set` on ABL's text,
    :func:`core.mod.subsets.eval_set` on each MOD subset the profile prunes; MOD runs on decoders only)
    and counts the distinct documents among their scored units.

    Parameters
    ----------
    profile : Profile
    tokenizer : transformers tokenizer
        The model's tokenizer (any tokenizer gives the design's counts approximately).
    kind : {"causal", "masked"}
    max_length : int, optional
        The model's maximum sequence length (caps the windows).

    Returns
    -------
    list of dict
        One per set: ``experiment`` ("ABL" or "MOD"), ``set`` (subset name), ``kind``, ``seq_len``,
        ``windows``, ``units`` (scored tokens), ``documents`` (distinct documents among them; None when
        the set could not be built), ``available`` (documents in the subset's eval split), ``minimum``
        (``profile.min_eval_documents``), ``ok`` (documents >= minimum) and ``error`` (why the set
        could not be built, else None).

    Raises
    ------
    MissingAssetError
        When a subset's package is not installed.
    """
    sets = [("ABL", ablation.ABL_DATA[("small", "text")],
             lambda text: ablation.eval_set(tokenizer, kind, profile, text, max_length))]
    if kind == "causal" and profile.mod is not None:
        sizes = profile.mod
        length = mod_subsets.eval_seq_len(sizes, profile, max_length)
        subsets, _ = mod_subsets.subsets_for("causal", "small", profile)
        sets += [("MOD", s, lambda s: mod_subsets.eval_set(tokenizer, s, sizes, length)) for s in subsets]
    minimum = profile.min_eval_documents or 0
    rows = []
    for experiment, name, build in sets:
        row = {"experiment": experiment, "set": name, "kind": kind, "seq_len": None, "windows": None,
               "units": None, "documents": None, "available": int(split_indices(name, "eval").size),
               "minimum": minimum, "ok": False, "error": None}
        try:
            es = build(name)
        except ValueError as err:
            row["error"] = str(err)
        else:
            row.update(seq_len=int(es.inputs.shape[1]), windows=int(es.inputs.shape[0]), units=es.n_units,
                       documents=es.n_documents())
            row["ok"] = row["documents"] >= minimum
        rows.append(row)
    return rows


@pytest.mark.parametrize("model", ["minilm (masked)", "minilm (as a decoder)", "smollm2"])
@pytest.mark.parametrize("name", ["ci", "small", "paper"])
def test_every_evaluation_set_spans_the_profiles_documents(name, model, tokenizer):
    from core.errors import MissingAssetError
    from core.profiles import VERDICT_PROFILES

    assert set(VERDICT_PROFILES) == {"ci", "small", "paper"}
    profile = get_profile(name)
    assert profile.min_eval_documents == (100 if name == "paper" else 16)
    if model == "smollm2":
        tok, kind, max_length = _smollm2_tokenizer(), "causal", None
        if tok is None:
            pytest.skip("smollm2-135m is not in the model cache yet (core.zoo.models.load_model builds it)")
    else:
        tok, kind, max_length = tokenizer, "masked" if "masked" in model else "causal", 512
    try:
        rows = _evaluation_documents(profile, tok, kind, max_length=max_length)
    except MissingAssetError as err:
        pytest.skip(err.reason)
    assert {r["experiment"] for r in rows} == ({"ABL"} if kind == "masked" else {"ABL", "MOD"})
    short = [r for r in rows if not r["ok"]]
    for r in rows:
        if r["ok"]:
            assert r["documents"] >= profile.min_eval_documents and r["units"] > 0
    if name != "paper":
        assert not short, short
    else:
        # the paper profile is the full tier's: on the small tier only a split with fewer documents than
        # the minimum (wiki's evaluation split) may fall short, and it fails with a message, never silently
        assert all(r["available"] < r["minimum"] and r["error"] for r in short), short
        assert not [r for r in short if r["experiment"] == "ABL"]


def test_short_evaluation_sets_fail_naming_the_set():
    profile = get_profile("small")
    profile.check_documents(16, "x")
    with pytest.raises(ValueError, match=r"ABL evaluation set of m \(news\) spans 15 distinct documents; "
                                         r"profile 'small' needs at least 16"):
        profile.check_documents(15, "ABL evaluation set of m (news)")


def test_evaluation_windows_per_kind():
    small = get_profile("small")
    assert small.eval_seq_len_for("causal") * 16 <= small.eval_tokens_for("causal")
    assert small.eval_seq_len_for("masked", max_length=64) == 64  # capped by the model
    p = Profile("p", collect_tokens=8, eval_tokens=4, collect_images=2, eval_images=1, seq_len=4, batch_size=1)
    assert p.eval_seq_len_for("masked") == p.eval_seq_len_for("causal") == 4  # unset: the collection windows
