"""Rehearsal models (core.zoo.rehearsal) and image models through their own processor: the configs carry
the papers' published widths, a cut keeps N layers at full width, a seeded build is deterministic, every
stand-in tokenizer stays inside its model's vocabulary, and a ViT-base-width model given by path gets
Fashion-MNIST as 3 x 224 x 224 through its processor."""
from __future__ import annotations

import json

import pytest
import torch
import transformers

from core.errors import UnsupportedModelError
from core.zoo import rehearsal, sites
from core.zoo.rehearsal import (STAND_INS, cut_bpe, build_rehearsal, parse, rehearsal_config, rehearsal_spec,
                                stand_in_tokenizer)

# The published configs' widths (the models' config.json on the Hub, as the papers used them): hidden
# size, MLP width, attention heads, KV heads, layers, vocabulary, maximum positions.
PUBLISHED = {
    "opt-1.3b": dict(hidden_size=2048, ffn_dim=8192, num_attention_heads=32, num_hidden_layers=24,
                     vocab_size=50272, max_position_embeddings=2048),
    "mistral-7b": dict(hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
                       num_hidden_layers=32, vocab_size=32000, max_position_embeddings=32768, rope_theta=10000.0,
                       sliding_window=4096),
    "mistral-7b-instruct": dict(hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                                num_key_value_heads=8, num_hidden_layers=32, vocab_size=32000,
                                max_position_embeddings=32768, rope_theta=1e6, sliding_window=None),
    "roberta-large": dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24,
                          vocab_size=50265, max_position_embeddings=514),
    "vit-base": dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                     image_size=224, patch_size=16, num_labels=1000),
    "vit-base-cifar100": dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                              num_hidden_layers=12, image_size=224, patch_size=16, num_labels=100),
    "bert-base-uncased": dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                              num_hidden_layers=12, vocab_size=30522, max_position_embeddings=512),
}


def test_every_rehearsal_model_has_its_published_widths():
    assert set(PUBLISHED) == set(STAND_INS)
    for base, fields in PUBLISHED.items():
        config = rehearsal_config(f"rehearsal:{base}")
        for key, value in fields.items():
            if key == "rope_theta":  # transformers 5 keeps it in rope_parameters
                got = config.rope_parameters["rope_theta"]
            else:
                got = config.num_labels if key == "num_labels" else getattr(config, key)
            assert got == value, f"{base}.{key}: {got} != {value}"


def test_a_cut_keeps_n_layers_at_full_width():
    config = rehearsal_config("rehearsal:mistral-7b@2L")
    assert config.num_hidden_layers == 2 and config.hidden_size == 4096 and config.intermediate_size == 14336
    model = build_rehearsal("rehearsal:bert-base-uncased@2L")
    assert len(sites.blocks(model)) == 2
    assert sites.site_width(model, "mlp") == 3072


def test_names_resolve_and_bad_ones_fail_naming_what_was_expected():
    from core.zoo.models import get_spec
    from core.zoo.own import resolve

    assert resolve("rehearsal:vit-base@1L:random") == "rehearsal:vit-base@1L:random"
    spec = get_spec("rehearsal:vit-base@1L:random")
    assert (spec.origin, spec.kind, spec.tier, spec.papers) == ("rehearsal", "image", "small", ("ABL",))
    assert "mean nothing" in spec.source and "seed" in spec.source
    assert parse("rehearsal:mistral-7b") == ("mistral-7b", None)
    for bad, words in [("rehearsal:mistral-7b@0L", "1 <= N <= 32"), ("rehearsal:mistral-7b@33L", "got 33"),
                       ("rehearsal:gpt-4", "rehearsal:opt-1.3b"), ("rehearsal:vit-base@2", "rehearsal:X@NL")]:
        with pytest.raises(UnsupportedModelError, match=words.replace("<", "\\<")):
            resolve(bad)


def test_a_seeded_build_is_deterministic_and_its_twin_differs():
    a = build_rehearsal("rehearsal:vit-base@1L").state_dict()
    b = build_rehearsal("rehearsal:vit-base@1L").state_dict()
    twin = build_rehearsal("rehearsal:vit-base@1L", seed=0).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    w = "vit.layers.0.mlp.fc2.weight"
    assert not torch.equal(a[w], twin[w])
    assert a[w].std().item() == pytest.approx(0.02, rel=0.05)  # initializer_range


def test_the_rng_is_left_as_it_was():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_rehearsal("rehearsal:vit-base@1L")
    assert torch.equal(torch.rand(3), expected)


def test_cut_bpe_keeps_the_ids_below_the_cut_and_their_merges():
    spec = {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4},
                      "merges": ["a b", ["ab", "c"]]},
            "added_tokens": [{"id": 0, "content": "a"}, {"id": 4, "content": "abc"}]}
    cut = cut_bpe(spec, 4)
    assert cut["model"]["vocab"] == {"a": 0, "b": 1, "c": 2, "ab": 3}
    assert cut["model"]["merges"] == ["a b"]
    assert [t["id"] for t in cut["added_tokens"]] == [0]
    assert spec["model"]["vocab"]["abc"] == 4  # the input is left as it was


TEXT = ("The committee met on Tuesday. Ünïcode, 日本語 and code: def f(x): return x ** 2  # tabs\tand "
        "numbers 1234567890 — done.")


@pytest.mark.parametrize("base", [b for b, s in STAND_INS.items() if s.package != "image"])
def test_stand_in_tokenizers_stay_inside_the_vocabulary(base):
    vocab = rehearsal_config(f"rehearsal:{base}").vocab_size
    tokenizer = stand_in_tokenizer(f"rehearsal:{base}")
    assert len(tokenizer) <= vocab
    ids = tokenizer(TEXT * 20)["input_ids"]
    assert max(ids) < vocab and len(ids) > 20
    if rehearsal_config(f"rehearsal:{base}").model_type in ("bert", "roberta"):
        assert tokenizer.mask_token_id is not None


def test_load_model_gives_a_card_that_names_the_stand_in_and_says_verdicts_mean_nothing():
    from core.zoo.models import load_model

    lm = load_model("rehearsal:bert-base-uncased@1L")
    assert lm.model.config.num_hidden_layers == 1 and lm.kind == "masked"
    assert lm.card["origin"] == "rehearsal" and "WordPiece" in lm.card["tokenizer"]
    assert "mean nothing" in lm.card["verdicts"]
    twin = load_model("rehearsal:bert-base-uncased@1L:random")
    assert twin.card["cache_key"] != lm.card["cache_key"]
    w = "bert.encoder.layer.0.output.dense.weight"
    assert not torch.equal(lm.model.state_dict()[w], twin.model.state_dict()[w])


def test_a_rehearsal_result_is_of_tier_rehearsal_and_the_report_says_its_verdicts_mean_nothing(tmp_path):
    from core.report.markdown import REHEARSAL_NOTE, render_report
    from core.results import ClaimResult, write_result

    write_result(tmp_path, ClaimResult(
        claim="ABL-6", model="rehearsal:vit-base@1L", tier="rehearsal", profile="ci", verdict="contradicted",
        statistic=1.0, statistic_name="x", interval=[0.5, 1.5], sample_sizes={}, seeds=[0], paper_value=None,
        data="d"))
    md, html = render_report(tmp_path)
    assert REHEARSAL_NOTE in md.read_text()
    assert "their verdicts mean nothing" in html.read_text()


# ------------------------------------------------------------------------------------------------
# Item 4: an image model by path through its own processor, or one built from its config
# ------------------------------------------------------------------------------------------------

def _vit_base_folder(tmp_path, *, processor_size: int | None = None, channels: int = 3, image_size: int = 224):
    """A ViT-base-width checkpoint (768 wide, 3,072-wide MLP, 12 heads, patch 16) of one layer."""
    fields = dict(json.loads((rehearsal.CONFIG_DIR / "vit-base.json").read_text()))
    fields.pop("_name_or_path")
    fields.update(num_hidden_layers=1, num_labels=10, num_channels=channels, image_size=image_size)
    config = transformers.ViTConfig(**{k: v for k, v in fields.items() if k != "model_type"})
    torch.manual_seed(0)
    folder = tmp_path / "vit-base-width"
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    if processor_size is not None:
        from core.data.images import vit_base_processor

        vit_base_processor(size=processor_size).save_pretrained(folder)
    return folder


def test_an_rgb_vit_by_path_gets_fashion_mnist_as_3x224x224_and_runs(tmp_path):
    from core.abl.ablation import image_inputs
    from core.profiles import Profile
    from core.zoo.models import load_model

    folder = _vit_base_folder(tmp_path)
    lm = load_model(str(folder))
    profile = Profile("tiny", collect_tokens=0, eval_tokens=0, collect_images=6, eval_images=4, seq_len=8,
                      batch_size=2)
    collect, evalset, resample, sizes, described = image_inputs(lm, profile, "fashion-mnist")
    assert tuple(collect.inputs.shape) == (6, 3, 224, 224) and tuple(evalset.inputs.shape) == (4, 3, 224, 224)
    assert tuple(resample["resample-pixels"]["pixel_values"].shape) == (1, 3, 224, 224)
    assert "RGB" in described["eval"]
    x = evalset.inputs
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])  # grey in every channel
    assert -1.0 <= x.min() < 0 < x.max() <= 1.0  # ViT-base's normalisation, (x / 255 - 0.5) / 0.5
    with torch.no_grad():
        logits = lm.model(pixel_values=x).logits
    assert logits.shape == (4, 10)


def test_the_folders_own_processor_wins_and_a_grey_model_keeps_the_harness_input(tmp_path):
    from core.data.images import image_split, model_image_processor

    folder = _vit_base_folder(tmp_path, processor_size=160, image_size=160)
    config = transformers.AutoConfig.from_pretrained(folder)
    processor = model_image_processor(config, str(folder))
    x, y = image_split("fashion-mnist", split="eval", n_images=3, processor=processor)
    assert tuple(x.shape) == (3, 3, 160, 160) and len(y) == 3
    assert model_image_processor(transformers.ViTConfig(num_channels=1, image_size=28)) is None
    with pytest.raises(ValueError, match="expected 1 .* or 3"):
        model_image_processor(transformers.ViTConfig(num_channels=4))


def test_a_rehearsal_vit_gets_images_at_its_config_size():
    from core.data.images import image_split, model_image_processor

    config = rehearsal_config("rehearsal:vit-base-cifar100@1L")
    x, _ = image_split("fashion-mnist", split="collect", n_images=2, processor=model_image_processor(config))
    assert tuple(x.shape) == (2, 3, 224, 224)
    spec = rehearsal_spec("rehearsal:vit-base-cifar100@1L")
    assert spec.papers == ("MOD",)


def test_the_rehearsal_profiles_are_the_papers_sizes_and_the_ci_design_with_shorter_windows():
    from dataclasses import asdict, replace

    from core.mod.subsets import subsets_for
    from core.profiles import get_profile

    paper, rehearsal_, ci, rci = (get_profile(n) for n in ("paper", "rehearsal", "ci", "rehearsal-ci"))
    assert {**asdict(rehearsal_), "name": "paper"} == asdict(paper)
    assert rehearsal_.mod == paper.mod and rehearsal_.bcl == paper.bcl
    # rehearsal-ci: ci's design (16 documents of one window, same subsets and readings), shorter windows
    assert (rci.min_eval_documents, rci.eval_doc_windows, rci.readings) == (16, 1, ci.readings)
    assert rci.eval_tokens // rci.eval_seq_len == 16 and rci.eval_tokens_masked // rci.eval_seq_len_masked == 16
    assert rci.eval_seq_len < ci.eval_seq_len and rci.eval_images < ci.eval_images
    mod, mod_ci = rci.mod, ci.mod
    assert mod.eval_tokens // mod.eval_seq_len == mod_ci.eval_tokens // mod_ci.eval_seq_len == 16
    assert subsets_for("causal", "small", rci) == subsets_for("causal", "small", ci)
    assert rci.bcl == replace(ci.bcl, collect_tokens=rci.bcl.collect_tokens) != ci.bcl


# The checkpoints' published parameter counts (their model cards / safetensors metadata; tied embeddings
# counted once): the full depth of every rehearsal model, built on the meta device (no memory).
PARAMETERS = {"opt-1.3b": 1_315_758_080, "mistral-7b": 7_241_732_096, "mistral-7b-instruct": 7_241_732_096,
              "vit-base": 86_567_656, "bert-base-uncased": 109_514_298, "roberta-large": 355.4e6}


@pytest.mark.parametrize("base", list(PARAMETERS))
def test_the_full_depth_has_the_papers_parameter_count_and_builds_where_asked(base):
    model = build_rehearsal(f"rehearsal:{base}", device="meta")
    assert next(model.parameters()).device.type == "meta"  # built on the device asked, as on CUDA
    n = sum(p.numel() for p in model.parameters())
    assert n == pytest.approx(PARAMETERS[base], rel=1e-3 if base == "roberta-large" else 0)
