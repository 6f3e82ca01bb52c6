"""Evaluation units that know their document (claims.md, "Intervals": documents, not tokens): EvalSet
document ids and their unit order, the ABL sweep's ``unit_docs`` and sizes, MOD's per-subset documents."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.abl.ablation import AblationSweep, run_abl
from core.evaluate import EvalSet, evaluate, make_eval_set, mask_tokens
from core.mod.experiment import run_mod
from core.mod.subsets import ModData, sub_evalset
from tests.tiny_models import VOCAB, build, inputs


def _windows(n=4, seq=12, seed=0):
    """Random token windows and document ids: two documents per window, -1 at the first position."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (n, seq), generator=g)
    docs = torch.arange(n)[:, None].repeat(1, seq) * 10
    docs[:, seq // 2:] += 1
    docs[:, 0] = -1
    return ids, docs


# ------------------------------------------------------------------------------------------------
# EvalSet
# ------------------------------------------------------------------------------------------------

def test_causal_units_take_their_target_tokens_document():
    # [CLS] a a b [SEP-separator] c [SEP]: targets a a b sep c SEP
    docs = torch.tensor([[-1, 5, 5, 7, -1, 8, -1], [-1, 3, 3, 3, 3, -1, -1]])
    es = EvalSet("causal", torch.zeros_like(docs), docs=docs)
    units = es.unit_docs()
    assert units.dtype == np.int64 and units.shape == (es.n_units,)
    # a separator or closing special token belongs to the document it is predicted from
    assert units.tolist() == [5, 5, 7, 7, 8, 8] + [3, 3, 3, 3, 3, 3]
    assert es.n_documents() == 4


def test_a_window_opening_with_special_tokens_gives_them_its_first_document():
    es = EvalSet("causal", torch.zeros(1, 4, dtype=torch.long), docs=torch.tensor([[-1, -1, 9, 9]]))
    assert es.unit_docs().tolist() == [9, 9, 9]
    empty = EvalSet("causal", torch.zeros(1, 3, dtype=torch.long), docs=torch.full((1, 3), -1))
    with pytest.raises(ValueError, match="no document"):
        empty.unit_docs()


def test_masked_units_follow_the_evaluators_order():
    ids, docs = _windows(n=5, seq=16)
    ids[:, 0] = 0  # a special token where the document id is -1, as text_windows makes them
    corrupted, labels = mask_tokens(ids, special_ids=[0, 1, 2], mask_id=3, vocab_size=VOCAB, seed=0)
    es = make_eval_set("masked", corrupted, labels=labels, docs=docs)
    units = es.unit_docs()
    assert units.shape == (es.n_units,)
    # evaluate() scores the chosen positions window by window, left to right: the same order
    rows, cols = torch.nonzero(es.labels != -100, as_tuple=True)
    assert units.tolist() == docs[rows, cols].tolist()
    assert evaluate(build("bert"), es, batch_size=2).n_units == units.size


def test_make_eval_set_keeps_the_documents_through_masking(tokenizer):
    ids = torch.tensor([[tokenizer.cls_token_id, 2000, 2001, 2002, 2003, tokenizer.sep_token_id]] * 40)
    docs = torch.tensor([[-1, 4, 4, 6, 6, -1]] * 40)
    es = make_eval_set("masked", ids, tokenizer=tokenizer, seed=0, docs=docs, name="news, eval split")
    assert torch.equal(es.docs, docs) and es.name == "news, eval split"
    assert set(es.unit_docs().tolist()) <= {4, 6} and es.n_units > 0


def test_images_are_their_own_documents():
    es = EvalSet("image", torch.zeros(7, 1, 28, 28), torch.zeros(7, dtype=torch.long))
    assert es.unit_docs().tolist() == list(range(7)) and es.has_docs
    with pytest.raises(ValueError, match="images are their own documents"):
        EvalSet("image", torch.zeros(7, 1, 28, 28), torch.zeros(7, dtype=torch.long), docs=torch.zeros(7))


def test_text_without_documents_fails_naming_the_set():
    es = make_eval_set("causal", torch.zeros(3, 8, dtype=torch.long), name="news, eval split")
    assert not es.has_docs
    with pytest.raises(ValueError, match=r"causal evaluation set 'news, eval split' \(3x8\) has no document ids"):
        es.unit_docs()


@pytest.mark.parametrize("shape", [(3, 7), (4, 8), (3,)])
def test_documents_of_the_wrong_shape_fail_at_construction_naming_both_shapes(shape):
    with pytest.raises(ValueError, match=rf"docs has shape \({', '.join(map(str, shape))},?\), but the inputs "
                                         r"have shape \(3, 8\)"):
        EvalSet("causal", torch.zeros(3, 8, dtype=torch.long), docs=torch.zeros(shape, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        EvalSet("causal", torch.zeros(3, 8, dtype=torch.long), docs=torch.zeros(3, 8))


# ------------------------------------------------------------------------------------------------
# ABL sweep
# ------------------------------------------------------------------------------------------------

def test_the_sweep_keeps_its_units_documents_and_counts(tmp_path):
    model = build("llama")
    ids, docs = _windows(seed=2)
    collect, evalset = EvalSet("causal", _windows(seed=1)[0]), EvalSet("causal", ids, docs=docs)
    resample = {"resample-ids": {"input_ids": torch.randint(5, VOCAB, (1, 12))}}
    sweep = run_abl(model, name="tiny", collect=collect, evalset=evalset, resample_inputs=resample,
                    fractions=(0.0, 0.5), seeds=(0, 1, 2), batch_size=2, progress=False,
                    info={"sizes": {"eval_tokens": ids.numel()}})
    assert np.array_equal(sweep.unit_docs, evalset.unit_docs()) and sweep.unit_docs.shape == (sweep.n_units,)
    assert sweep.info["sizes"] == {"eval_tokens": 48, "eval_units": 44, "draws": 3, "eval_documents": 8}
    from core.results import is_number

    assert all(is_number(v) for v in sweep.info["sizes"].values())  # claims put them in sample_sizes
    sweep.save(tmp_path / "s.npz")
    back = AblationSweep.load(tmp_path / "s.npz")
    assert np.array_equal(back.unit_docs, sweep.unit_docs) and back.unit_docs.dtype == np.int64
    assert back.info["sizes"] == sweep.info["sizes"]


def test_an_image_sweep_counts_images_as_documents():
    vit = build("vit")
    x, y = inputs("vit", batch=6)["pixel_values"], torch.arange(6)
    sweep = run_abl(vit, name="tiny-vit", collect=EvalSet("image", x, y), evalset=EvalSet("image", x, y),
                    resample_inputs={"resample-pixels": {"pixel_values": x[:1]}}, fractions=(0.0, 0.5), seeds=(0, 1),
                    batch_size=3, progress=False)
    assert sweep.unit_docs.tolist() == list(range(6))
    assert sweep.info["sizes"] == {"eval_units": 6, "draws": 2, "eval_documents": 6}


# ------------------------------------------------------------------------------------------------
# MOD data
# ------------------------------------------------------------------------------------------------

def _mod_text_data():
    g = torch.Generator().manual_seed(0)
    subs = ["a", "b", "c"]
    collect = {s: {c: EvalSet("causal", torch.randint(3, 97, (2, 12), generator=g)) for c in subs} for s in "AB"}
    docs = torch.tensor([0, 1, 1, 0, 1, 2])[:, None].repeat(1, 12)  # per subset: 2, 2 and 3 documents, ids reused
    docs[5, 6:] = 3
    evalset = EvalSet("causal", torch.randint(3, 97, (6, 12), generator=g), docs=docs)
    return ModData("causal", subs, subs, collect, evalset, np.repeat(np.arange(3), [22, 22, 22]))


def test_mod_units_know_their_subsets_documents():
    data = _mod_text_data()
    assert data.unit_docs.shape == (66,)
    # the same id in two subsets is two documents
    per_subset = [set(data.unit_docs[data.unit_subset == i].tolist()) for i in range(3)]
    assert [len(s) for s in per_subset] == [2, 2, 3]
    assert not (per_subset[0] & per_subset[1]) and not (per_subset[1] & per_subset[2])
    assert data.counts() == {"eval_units": 66, "draws": 1, "eval_documents": 7, "eval_documents_min_per_subset": 2}
    assert data.per_subset() == {"eval_units": {"a": 22, "b": 22, "c": 22}, "eval_documents": {"a": 2, "b": 2, "c": 3}}
    sub = sub_evalset(data, 2)
    assert torch.equal(sub.docs, data.evalset.docs[4:6]) and sub.name == "c"
    assert sub.unit_docs().tolist() == [1] * 11 + [2] * 5 + [3] * 6


def test_mod_data_rejects_units_that_do_not_match():
    data = _mod_text_data()
    with pytest.raises(ValueError, match=r"unit_subset has shape \(65,\).*66 units"):
        ModData("causal", data.subsets, data.reference, data.collect, data.evalset, data.unit_subset[:65])
    with pytest.raises(ValueError, match=r"unit_docs has shape \(3,\).*66 units"):
        ModData("causal", data.subsets, data.reference, data.collect, data.evalset, data.unit_subset,
                unit_docs=np.arange(3))


def test_the_mod_result_records_documents_and_units():
    data = _mod_text_data()
    res = run_mod(build("llama", 0), build("llama", 1), name="tiny", data=data, batch_size=4, stats_key="docs",
                  k=4, progress=False, null_draws=10)
    sizes = res.info["sizes"]
    assert sizes == {"eval_units": 66, "draws": 1, "eval_documents": 7, "eval_documents_min_per_subset": 2}
    assert res.info["per_subset"]["eval_documents"] == {"a": 2, "b": 2, "c": 3}
    # claims put the sizes in a result's sample_sizes: numbers only
    from core.results import is_number

    assert all(is_number(v) for v in sizes.values())


# ------------------------------------------------------------------------------------------------
# The experiments' evaluation sets on the small tier's data
# ------------------------------------------------------------------------------------------------

def test_abl_and_mod_evaluation_sets_carry_their_documents(tokenizer):
    from core.abl import ablation
    from core.mod import subsets
    from core.errors import MissingAssetError
    from core.profiles import get_profile

    small = get_profile("small")
    try:
        es = ablation.eval_set(tokenizer, "masked", small, "news", max_length=512)
        mod = subsets.eval_set(tokenizer, "mmlu-bio", small.mod, 32)
    except MissingAssetError as err:
        pytest.skip(err.reason)
    assert es.inputs.shape == es.docs.shape == (small.eval_tokens_for("masked") // 128, 128)
    assert es.n_documents() == es.inputs.shape[0]  # one window per document
    assert mod.inputs.shape == mod.docs.shape == (16, 32) and mod.n_documents() >= 16
