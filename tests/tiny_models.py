"""Tiny random-initialised models of every architecture family, built offline from configs."""
from __future__ import annotations

import torch
import transformers as T

VOCAB = 97


def _causal(cfg_cls, model_cls, **kw):
    return lambda: model_cls(cfg_cls(vocab_size=VOCAB, **kw))


FAMILIES = {
    "llama": _causal(T.LlamaConfig, T.LlamaForCausalLM, hidden_size=32, intermediate_size=48,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "mistral": _causal(T.MistralConfig, T.MistralForCausalLM, hidden_size=32, intermediate_size=48,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "gpt2": _causal(T.GPT2Config, T.GPT2LMHeadModel, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                    bos_token_id=0, eos_token_id=0),
    "opt": _causal(T.OPTConfig, T.OPTForCausalLM, hidden_size=32, ffn_dim=48, num_hidden_layers=2,
                   num_attention_heads=4, word_embed_proj_dim=32, max_position_embeddings=64),
    "bert": _causal(T.BertConfig, T.BertForMaskedLM, hidden_size=32, intermediate_size=48,
                    num_hidden_layers=2, num_attention_heads=4),
    "roberta": _causal(T.RobertaConfig, T.RobertaForMaskedLM, hidden_size=32, intermediate_size=48,
                       num_hidden_layers=2, num_attention_heads=4),
    "vit": lambda: T.ViTForImageClassification(T.ViTConfig(
        image_size=28, patch_size=7, num_channels=1, hidden_size=32, intermediate_size=48,
        num_hidden_layers=2, num_attention_heads=4, num_labels=10)),
}


def build(family: str, seed: int = 0):
    """A tiny model of ``family`` in eval mode, initialised under ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = FAMILIES[family]()
    return model.eval()


def inputs(family: str, seed: int = 1, batch: int = 2, seq: int = 9) -> dict:
    g = torch.Generator().manual_seed(seed)
    if family == "vit":
        return {"pixel_values": torch.randn(batch, 1, 28, 28, generator=g)}
    return {"input_ids": torch.randint(3, VOCAB, (batch, seq), generator=g)}


def logits(model, x) -> torch.Tensor:
    with torch.no_grad():
        return model(**x).logits
