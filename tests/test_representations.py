"""BCL neuron representations (Eq. 1): the mean per token equals the mean over its occurrences."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.zoo import sites
from core.bcl.representations import Representations, token_representations
from tests.tiny_models import VOCAB, build


def _by_hand(model, ids, valid=None):
    """Residual activations of every position, then the mean over each token's occurrences."""
    acts = {}
    with sites.trace(model, "resid", lambda l, x: acts.__setitem__(l, x.clone())), torch.no_grad():
        model(input_ids=ids)
    n_layers = len(acts)
    width = acts[0].shape[-1]
    flat = torch.cat([acts[l].reshape(-1, width) for l in range(n_layers)], dim=1)  # (pos, L * W)
    tok = ids.reshape(-1)
    keep = torch.ones_like(tok, dtype=torch.bool) if valid is None else valid.reshape(-1)
    out = {}
    for t in sorted(set(tok[keep].tolist())):
        sel = (tok == t) & keep
        out[t] = flat[sel].double().mean(0).numpy()
    return out, flat[keep].double().mean(0).numpy().reshape(n_layers, width)


def test_mean_per_token_matches_a_tiny_corpus_by_hand():
    model = build("bert")
    ids = torch.tensor([[5, 6, 5, 7], [7, 5, 8, 8]])
    rep = token_representations(model, ids, batch_size=1)
    expected, neuron_mean = _by_hand(model, ids)
    assert rep.token_ids.tolist() == [5, 6, 7, 8]
    assert rep.counts.tolist() == [3, 1, 2, 2]
    assert rep.mean.shape == (rep.n_layers * rep.width, 4)
    for j, t in enumerate(rep.token_ids):
        np.testing.assert_allclose(rep.mean[:, j], expected[int(t)], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rep.neuron_mean, neuron_mean, rtol=1e-5, atol=1e-6)
    assert rep.n_positions == 8


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 5), seq=st.integers(2, 7), batch=st.integers(1, 4),
       family=st.sampled_from(["bert", "llama"]))
def test_mean_equals_mean_over_occurrences(seed, n, seq, batch, family):
    model = build(family)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 12, (n, seq), generator=g)  # few distinct ids: many repeats
    rep = token_representations(model, ids, batch_size=batch)
    expected, _ = _by_hand(model, ids)
    assert set(rep.token_ids.tolist()) == set(expected)
    assert int(rep.counts.sum()) == n * seq
    for j, t in enumerate(rep.token_ids):
        np.testing.assert_allclose(rep.mean[:, j], expected[int(t)], rtol=1e-4, atol=1e-4)


def test_padding_is_excluded():
    model = build("bert")
    ids = torch.tensor([[5, 6, 0, 0], [7, 5, 8, 0]])
    mask = (ids != 0).long()
    rep = token_representations(model, ids, attention_mask=mask)
    assert 0 not in rep.token_ids.tolist()
    assert rep.n_positions == 5
    rep2 = token_representations(model, ids, ignore_ids=(0,))
    assert 0 not in rep2.token_ids.tolist() and rep2.n_positions == 5


def test_save_and_load_round_trip(tmp_path):
    model = build("llama")
    ids = torch.randint(3, VOCAB, (2, 5), generator=torch.Generator().manual_seed(0))
    rep = token_representations(model, ids)
    rep.info = {"corpus": "x"}
    rep.save(tmp_path / "r.npz")
    back = Representations.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.mean, rep.mean)
    np.testing.assert_array_equal(back.counts, rep.counts)
    assert back.info == {"corpus": "x"} and back.n_layers == rep.n_layers
    assert back.layer_mean().shape == (rep.n_layers,)


def test_bad_input_fails_at_the_boundary():
    model = build("bert")
    with pytest.raises(ValueError, match="shape"):
        token_representations(model, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="no position left"):
        token_representations(model, torch.zeros((1, 3), dtype=torch.long), ignore_ids=(0,))
