"""The architecture table's output heads, the scoring and BCL's intervention on every family.

Every family of :data:`core.zoo.sites.ARCHITECTURES` runs on a tiny random-initialised model
(:mod:`tests.tiny_models`), against the unmodified Hugging Face model: the table's head gives the
whole model's logits, :func:`core.evaluate.evaluate` gives the model's own loss, and
:func:`core.bcl.intervention.intervene` gives the losses of the whole model under the same
replacement (BCL section 5.5), with its unablated condition the plain forward pass.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.bcl.baselines import baseline_sets
from core.bcl.intervention import intervene, replace_resid
from core.bcl.sentences import cluster_sentences
from core.evaluate import EvalSet, evaluate, mask_tokens
from core.zoo import sites
from tests.tiny_models import FAMILIES, IMAGE_FAMILIES, VOCAB, build, inputs, varied_norms

TEXT_FAMILIES = sorted(set(FAMILIES) - IMAGE_FAMILIES)
MASK_ID = 3
SPECIAL = [0, 1, 2, MASK_ID]


def _kind(model) -> str:
    return "masked" if type(model).__name__.endswith("ForMaskedLM") else "causal"


def test_every_family_of_the_table_has_a_tiny_model():
    assert {build(f).config.model_type for f in FAMILIES} == set(sites.ARCHITECTURES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_tables_head_gives_the_whole_models_logits(family):
    """Where the row names a head, ``head(body(x)[0])`` is the model's logits; where it names none,
    the model has no one module that would give them (so it runs whole)."""
    model = build(family)
    arch = sites.architecture(model)
    split = sites.split_head(model)
    if family in IMAGE_FAMILIES:
        assert arch.head is None and split is None
        return
    x = inputs(family)
    with torch.no_grad():
        whole = model(**x).logits
        if arch.head is not None:
            body, head = split
            torch.testing.assert_close(head(body(**x)[0]), whole, rtol=1e-5, atol=1e-6)
            return
        assert split is None
        # no child of the task model besides its base model maps the last hidden state to the logits
        hidden = model.base_model(**x)[0]
        for name, child in model.named_children():
            if child is model.base_model:
                continue
            try:
                out = child(hidden)
            except Exception:  # noqa: BLE001 - a module that cannot take the hidden state is no head
                continue
            assert not (torch.is_tensor(out) and out.shape == whole.shape and torch.allclose(out, whole)), name


def test_a_model_without_the_rows_head_module_runs_whole():
    model = build("bert")
    assert sites.split_head(model.bert) is None          # a bare base model: no head at "cls"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_scoring_equals_the_models_own_loss(family):
    """evaluate() with the table's head split: the model's own loss and the whole logits' arg-max, for
    masked LMs (the head at the chosen positions only), causal LMs and image classifiers alike."""
    model = build(family)
    split = sites.split_head(model)
    if family in IMAGE_FAMILIES:
        x = inputs(family, batch=5)["pixel_values"]
        y = torch.arange(5)
        data, kwargs = EvalSet("image", x, y), {"pixel_values": x, "labels": y}
    elif _kind(model) == "masked":
        ids = torch.randint(len(SPECIAL), VOCAB, (4, 12), generator=torch.Generator().manual_seed(0))
        inp, labels = mask_tokens(ids, special_ids=SPECIAL, mask_id=MASK_ID, vocab_size=VOCAB, seed=0)
        data, kwargs = EvalSet("masked", inp, labels), {"input_ids": inp, "labels": labels}
    else:
        ids = torch.randint(len(SPECIAL), VOCAB, (4, 12), generator=torch.Generator().manual_seed(0))
        data, kwargs = EvalSet("causal", ids), {"input_ids": ids, "labels": ids}
    scores = evaluate(model, data, batch_size=3, split=split)
    with torch.no_grad():
        out = model(**kwargs)
    assert scores.n_units == data.n_units
    assert scores.ce.mean() == pytest.approx(float(out.loss), rel=1e-5)
    if data.kind == "masked":
        chosen = data.labels != -100
        np.testing.assert_array_equal(scores.top1, (out.logits[chosen].argmax(-1) == data.labels[chosen]).numpy())
        whole = evaluate(model, data, batch_size=3, split=None)
        np.testing.assert_allclose(scores.ce, whole.ce, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_identity_edit_of_the_residual_stream_changes_nothing(family):
    """resid_hooks with fn returning x at every layer: the same logits, bit for bit; the hooks leave
    with the block."""
    model = build(family)
    x = inputs(family)
    seen = []

    def same(layer, h):
        seen.append(layer)
        return h

    n = sites.n_layers(model, "resid")
    with torch.no_grad():
        plain = model(**x).logits
        with sites.resid_hooks(model, range(n), same, edit=True):
            edited = model(**x).logits
    assert sorted(seen) == list(range(n))
    torch.testing.assert_close(edited, plain, rtol=0, atol=0)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def _loss_under(model, kind, ids, targets, neurons, n_layers, width) -> float:
    """CE at the targets of the whole model (no head split) with ``neurons`` replaced by the live mean;
    ``neurons=None``: the plain forward pass, no hook."""
    inp = ids.masked_fill(targets, MASK_ID) if kind == "masked" else ids
    with torch.no_grad():
        if neurons is None:
            logits = model(input_ids=inp).logits
        else:
            keep = torch.ones((ids.shape[0], n_layers * width))
            keep[:, torch.as_tensor(neurons)] = 0.0
            with replace_resid(model, keep.view(-1, n_layers, width)):
                logits = model(input_ids=inp).logits
    if kind == "masked":
        return float(F.cross_entropy(logits[targets].float(), ids[targets]))
    return float(F.cross_entropy(logits[:, :-1][targets[:, 1:]].float(), ids[:, 1:][targets[:, 1:]]))


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_intervention_runs_on_every_family_and_equals_the_whole_model(family):
    """intervene() on every text family of the table: the unablated loss is the plain forward pass's
    and every condition's % increase is the whole model's under the same live-mean replacement,
    whether the family's head is split off or the model runs whole."""
    model = varied_norms(build(family))
    kind = _kind(model)
    n_layers, width = sites.n_layers(model, "resid"), sites.site_width(model, "resid")
    windows = torch.randint(6, 30, (6, 10), generator=torch.Generator().manual_seed(4))
    top = [6, 7]
    cluster = np.array([1, width + 2, width + 5, (n_layers - 1) * width + 3])
    sc = intervene(model, kind=kind, windows=windows, cluster=cluster, top_ids=top, mask_id=MASK_ID,
                   n_layers=n_layers, width=width, max_sentences=4, seeds=(0,), salt=(1,), batch_rows=4)
    assert sc is not None
    rows, targets = cluster_sentences(windows, top, kind=kind, max_sentences=4)
    ids = windows[rows]
    base = _loss_under(model, kind, ids, targets, None, n_layers, width)
    assert sc.rows == rows.tolist()
    assert sc.base_loss == pytest.approx(base, rel=1e-5)
    want = _loss_under(model, kind, ids, targets, cluster, n_layers, width)
    assert abs(want - base) > 1e-6  # the replacement does something
    assert sc.cluster_pct == pytest.approx(100 * (want / base - 1), rel=1e-4, abs=1e-4)
    for b, sets in baseline_sets(cluster, n_layers, width, (0,), (1,)).items():
        loss = _loss_under(model, kind, ids, targets, sets[0], n_layers, width)
        assert sc.baselines[b][0] == pytest.approx(100 * (loss / base - 1), rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("family", ["roberta", "xlm-roberta", "bert"])
def test_the_position_offset_is_where_the_models_positions_run_out(family):
    """``max_position_embeddings - position_offset`` tokens run and one more does not (RoBERTa's
    positions start at ``padding_idx + 1``); the plan reads the same length from a config."""
    from core import plan

    model = build(family)
    cfg = model.config
    offset = sites.position_offset(cfg)
    assert offset == sites.architecture(model).position_offset == (2 if "roberta" in family else 0)
    n = cfg.max_position_embeddings - offset
    ids = torch.randint(len(SPECIAL), VOCAB, (1, n + 1), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert model(input_ids=ids[:, :n]).logits.shape == (1, n, VOCAB)
        with pytest.raises((IndexError, RuntimeError)):
            model(input_ids=ids)
    cfg.architectures = [type(model).__name__]
    assert plan.dims_from_config(cfg).max_length == n


@pytest.mark.parametrize("family", ["llama", "qwen3", "phi3", "gpt2", "opt"])
def test_the_plan_reads_a_gated_mlp_from_the_table(family):
    """A gated MLP (three matrices) where the family's row has a gate projection."""
    from core import plan

    model = build(family)
    model.config.architectures = [type(model).__name__]
    assert plan.dims_from_config(model.config).gated == (sites.architecture(model).gate is not None)
    assert plan.dims_from_config(model.config).gated == (family in ("llama", "qwen3", "phi3"))
