"""Tiny random-initialised models of every architecture family, built offline from configs.

Every family has 2 blocks, ``d_model = 32``, 4 attention heads and ``d_mlp = 48`` (GPT-2: 128), so
that tests can state the widths; ``HEAD_DIM`` names the families whose head dimension is not
``d_model / n_heads`` (their attention pre-out width is then ``4 * HEAD_DIM``).
"""
from __future__ import annotations

import torch
import transformers as T

VOCAB = 97
N_HEADS = 4

_SMALL = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=N_HEADS)
_IDS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)  # inside the tiny vocabulary


def _causal(cfg_cls, model_cls, **kw):
    return lambda: model_cls(cfg_cls(vocab_size=VOCAB, **kw))


def _image(cfg_cls, model_cls):
    return lambda: model_cls(cfg_cls(image_size=28, patch_size=7, num_channels=1, num_labels=10, **_SMALL))


_DEBERTA_V3 = dict(relative_attention=True, pos_att_type=["p2c", "c2p"], position_biased_input=False,
                   position_buckets=8, norm_rel_ebd="layer_norm", share_att_key=True, max_position_embeddings=64,
                   **_SMALL)

#: Test family name -> builder of the tiny model (the name is ``config.model_type`` unless a suffix
#: names a variant of a family's layout).
FAMILIES = {
    # decoders
    "llama": _causal(T.LlamaConfig, T.LlamaForCausalLM, hidden_size=32, intermediate_size=48,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "mistral": _causal(T.MistralConfig, T.MistralForCausalLM, hidden_size=32, intermediate_size=48,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "gpt2": _causal(T.GPT2Config, T.GPT2LMHeadModel, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                    bos_token_id=0, eos_token_id=0),
    "opt": _causal(T.OPTConfig, T.OPTForCausalLM, hidden_size=32, ffn_dim=48, num_hidden_layers=2,
                   num_attention_heads=4, word_embed_proj_dim=32, max_position_embeddings=64),
    "gpt_neox": _causal(T.GPTNeoXConfig, T.GPTNeoXForCausalLM, max_position_embeddings=64, **_SMALL, **_IDS),
    "gptj": _causal(T.GPTJConfig, T.GPTJForCausalLM, n_embd=32, n_inner=48, n_layer=2, n_head=N_HEADS,
                    n_positions=64, rotary_dim=4, **_IDS),
    "phi": _causal(T.PhiConfig, T.PhiForCausalLM, max_position_embeddings=64, **_SMALL, **_IDS),
    "phi3": _causal(T.Phi3Config, T.Phi3ForCausalLM, num_key_value_heads=2, max_position_embeddings=64,
                    **_SMALL, **_IDS),
    "qwen2": _causal(T.Qwen2Config, T.Qwen2ForCausalLM, num_key_value_heads=2, **_SMALL, **_IDS),
    "qwen3": _causal(T.Qwen3Config, T.Qwen3ForCausalLM, num_key_value_heads=2, head_dim=16, **_SMALL, **_IDS),
    "olmo2": _causal(T.Olmo2Config, T.Olmo2ForCausalLM, num_key_value_heads=2, **_SMALL, **_IDS),
    "gemma": _causal(T.GemmaConfig, T.GemmaForCausalLM, num_key_value_heads=2, head_dim=16, **_SMALL, **_IDS),
    "gemma2": _causal(T.Gemma2Config, T.Gemma2ForCausalLM, num_key_value_heads=2, head_dim=16, **_SMALL,
                      **_IDS),
    # Falcon-7B's layout: parallel attention and MLP on one layer norm, multi-query attention
    "falcon": _causal(T.FalconConfig, T.FalconForCausalLM, hidden_size=32, ffn_hidden_size=48,
                      num_hidden_layers=2, num_attention_heads=N_HEADS, **_IDS),
    "stablelm": _causal(T.StableLmConfig, T.StableLmForCausalLM, num_key_value_heads=2, **_SMALL, **_IDS),
    # encoders
    "bert": _causal(T.BertConfig, T.BertForMaskedLM, hidden_size=32, intermediate_size=48,
                    num_hidden_layers=2, num_attention_heads=4),
    "roberta": _causal(T.RobertaConfig, T.RobertaForMaskedLM, hidden_size=32, intermediate_size=48,
                       num_hidden_layers=2, num_attention_heads=4),
    "xlm-roberta": _causal(T.XLMRobertaConfig, T.XLMRobertaForMaskedLM, **_SMALL),
    "distilbert": _causal(T.DistilBertConfig, T.DistilBertForMaskedLM, dim=32, hidden_dim=48, n_layers=2,
                          n_heads=N_HEADS),
    # ELECTRA's generator: embeddings narrower than the blocks, projected up before block 0
    "electra": _causal(T.ElectraConfig, T.ElectraForMaskedLM, embedding_size=16, **_SMALL),
    # DeBERTa-v3's disentangled relative attention
    "deberta-v2": _causal(T.DebertaV2Config, T.DebertaV2ForMaskedLM, **_DEBERTA_V3),
    # DeBERTa-v2-xlarge's convolution, which the encoder runs between blocks 0 and 1
    "deberta-v2-conv": _causal(T.DebertaV2Config, T.DebertaV2ForMaskedLM, conv_kernel_size=3, **_DEBERTA_V3),
    # vision
    "vit": _image(T.ViTConfig, T.ViTForImageClassification),
    "deit": _image(T.DeiTConfig, T.DeiTForImageClassification),
}

#: Families that take images (``pixel_values`` of shape (batch, 1, 28, 28)).
IMAGE_FAMILIES = frozenset({"vit", "deit"})

#: Families whose head dimension is set apart from ``d_model / N_HEADS`` (8).
HEAD_DIM = {"qwen3": 16, "gemma": 16, "gemma2": 16}

#: Decoders whose attention shares keys and values between heads: number of key-value heads
#: (Falcon-7B's multi-query attention: one).
KV_HEADS = {"llama": 2, "mistral": 2, "qwen2": 2, "phi3": 2, "qwen3": 2, "olmo2": 2, "gemma": 2, "gemma2": 2,
            "stablelm": 2, "falcon": 1}


def build(family: str, seed: int = 0):
    """A tiny model of ``family`` in eval mode, initialised under ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = FAMILIES[family]()
    return model.eval()


def varied_norms(model, seed: int = 0):
    """``model`` with random LayerNorm gains and biases, in place: at initialisation (gain 1, bias 0) a
    post-LN model's residual stream has mean exactly 0 at every token, which would hide what a
    replacement by that mean does (BCL section 5.5)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.LayerNorm) and mod.weight is not None:
                mod.weight.copy_(1 + 0.5 * torch.randn(mod.weight.shape, generator=g))
                if mod.bias is not None:
                    mod.bias.copy_(0.5 * torch.randn(mod.bias.shape, generator=g))
    return model


def inputs(family: str, seed: int = 1, batch: int = 2, seq: int = 9) -> dict:
    g = torch.Generator().manual_seed(seed)
    if family in IMAGE_FAMILIES:
        return {"pixel_values": torch.randn(batch, 1, 28, 28, generator=g)}
    return {"input_ids": torch.randint(3, VOCAB, (batch, seq), generator=g)}


def logits(model, x) -> torch.Tensor:
    with torch.no_grad():
        return model(**x).logits
