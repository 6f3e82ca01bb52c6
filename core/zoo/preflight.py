"""A model's preflight: do the neuron sites of :data:`core.zoo.sites.ARCHITECTURES` behave on it?

Before any claim measures a model, :func:`preflight` runs a few forward passes on a handful of real
inputs (:func:`preflight_inputs`: fixed sentences through the model's own tokenizer, or Fashion-MNIST
images) and checks what every experiment takes for granted about the hooks of :mod:`core.zoo.sites`:

1. ``sites-found``: the family has a row, and every block has the row's modules (MLP ``W_out``,
   attention output projection) at the row's paths, each a projection (a 2-D weight, not a norm);
2. ``resid-is-hidden-states``: the residual sites are ``output_hidden_states`` bit for bit (the last
   one: the last block's output, which a final norm outside the blocks may turn into the last hidden
   state);
3. ``ones-mask-identity``: :func:`~core.zoo.sites.ablate` with an all-ones mask, at every site, leaves
   the logits bit-identical (claims.md, "Ablation": the mask-1 baseline is the unmodified model);
4. ``widths-match-config``: the activations the hooks see are as wide as the config says: ``d_mlp``
   (MLP neurons), ``n_heads * d_head`` (attention pre-out neurons), ``d_model`` (residual neurons),
   in every layer;
5. ``attn-mixes-positions``: in layer 0, the attention pre-out neurons at the last position change
   when the input at position 1 (the first patch of an image) changes: they come after attention,
   which mixes positions (the input of a query, key or value projection, as wide, would not);
6. ``attn-ablation-changes-logits`` / ``mlp-ablation-changes-logits``: zero-ablating every attention
   pre-out neuron (every MLP neuron) of every layer changes the logits, so the hook sits on the
   forward path and edits what it should;
7. ``hooks-restore-model``: after leaving every hook context the model has the hooks, parameters,
   buffers and mode it had, and gives the same logits bit for bit.

A wrong row (a path to the wrong module, a hook that does nothing) fails one of them; the report names
the check, the module path it expected and what it found. The function is free of pytest: the claims
layer (``claims/_claim.py``) decides to stop a model's claims on a failed preflight.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from core.zoo import sites

#: The checks in the order they run.
CHECKS = ("sites-found", "resid-is-hidden-states", "ones-mask-identity", "widths-match-config",
          "attn-mixes-positions", "attn-ablation-changes-logits", "mlp-ablation-changes-logits", "hooks-restore-model")

#: Fixed text for text models' preflight inputs (tokenised by the model's own tokenizer).
SENTENCES = (
    "The cat sat on the mat and watched the rain run down the window all afternoon.",
    "Neurons in a transformer can be ablated one at a time to see what each of them does.",
    "She bought three apples, two pears and a loaf of bread at the market on Saturday.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # prints 5 on the screen",
)

#: Tokens per sentence at most (every sentence is cut to the shortest, so the batch needs no padding).
MAX_TOKENS = 12

#: Number of images for image models' preflight inputs (the first of the Fashion-MNIST eval split).
N_IMAGES = 4

#: Config fields that hold the MLP width, in the order tried (None in the config: 4 * d_model).
_D_MLP_FIELDS = ("intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size", "hidden_dim")


@dataclass(frozen=True)
class Check:
    """One preflight check: ``name`` (one of :data:`CHECKS`), whether it ``passed``, what was
    ``expected`` and what was ``found`` (plain sentences naming module paths and widths), and the
    wall-clock ``seconds`` it took."""

    name: str
    passed: bool
    expected: str
    found: str
    seconds: float


@dataclass(frozen=True)
class PreflightReport:
    """The outcome of :func:`preflight` on one model.

    Attributes
    ----------
    model : str
        The model's name (``LoadedModel.name``, or the class name of a bare module).
    family : str or None
        ``config.model_type``: the key of its row in :data:`core.zoo.sites.ARCHITECTURES`.
    row : str
        The row, as ``ARCHITECTURES['llama'] = Architecture(blocks='model.layers', ...)`` (fields
        that differ from their defaults), or a sentence saying there is none.
    inputs : str
        What the checks ran on (e.g. "4 sentences of 16 tokens (batch 4 x 16)").
    checks : tuple of Check
        In the order of :data:`CHECKS`; after a failed ``sites-found`` no other check runs.
    seconds : float
        Wall-clock time of all checks.
    """

    model: str
    family: str | None
    row: str
    inputs: str
    checks: tuple[Check, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> Check | None:
        """The first failed check, or None."""
        return next((c for c in self.checks if not c.passed), None)

    def message(self) -> str:
        """One line: every check passed, or the first failed check with what it expected and found,
        and the family's row."""
        bad = self.failed
        if bad is None:
            return f"preflight of {self.model}: {len(self.checks)} checks passed in {self.seconds:.2f} s"
        return (f"preflight of {self.model} failed check {bad.name}: expected {bad.expected}; found "
                f"{bad.found}. Family {self.family!r}, core/zoo/sites.py {self.row}")

    def to_dict(self) -> dict:
        """A JSON-ready dict (``run.json``'s ``preflight`` entries)."""
        d = asdict(self)
        d["passed"] = self.passed
        d["checks"] = [asdict(c) for c in self.checks]
        return d


def preflight(model, inputs: Mapping[str, torch.Tensor], *, name: str | None = None,
              about: str | None = None) -> PreflightReport:
    """Check the neuron sites' hooks on ``model`` with ``inputs`` (see the module docstring).

    Parameters
    ----------
    model : core.zoo.models.LoadedModel or transformers.PreTrainedModel
        A task model (``...ForCausalLM``, ``...ForMaskedLM``, ``...ForImageClassification``) in eval
        mode whose output has ``logits``; it is left as it came.
    inputs : mapping of str to torch.Tensor
        Keyword arguments of one forward pass (``input_ids`` of shape ``(batch, seq)``, int64, or
        ``pixel_values`` of shape ``(batch, channels, height, width)``, float), e.g. from
        :func:`preflight_inputs`; moved to the model's device.
    name : str, optional
        The model's name in the report (default: ``LoadedModel.name`` or the class name).
    about : str, optional
        What the inputs are (:func:`preflight_inputs`' description), put before their shapes.

    Returns
    -------
    PreflightReport
        Never raises for a model that fails a check: an exception inside a check fails that check,
        naming the exception.

    Raises
    ------
    TypeError
        When ``inputs`` is not a non-empty mapping of tensors, or ``model`` is not a torch module.
    """
    net = model if isinstance(model, nn.Module) else getattr(model, "model", None)  # a LoadedModel's
    if not isinstance(net, nn.Module):
        raise TypeError(f"preflight: expected a LoadedModel or a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, Mapping) or not inputs or not all(torch.is_tensor(v) for v in inputs.values()):
        got = type(inputs).__name__ if not isinstance(inputs, Mapping) else \
            {k: type(v).__name__ for k, v in inputs.items()}
        raise TypeError(f"preflight: expected a non-empty mapping of forward keyword arguments to tensors "
                        f"(input_ids or pixel_values), got {got}")
    name = name or (type(net).__name__ if model is net else getattr(model, "name", None)) or type(net).__name__
    device = next(net.parameters()).device
    x = {k: v.to(device) for k, v in inputs.items()}
    family = getattr(getattr(net, "config", None), "model_type", None)
    described = _describe_inputs(x) if about is None else f"{about}: {_describe_inputs(x)}"
    start = time.perf_counter()
    checks: list[Check] = []
    ctx: dict = {}

    def run(check_name: str, fn: Callable[[dict], tuple[bool, str, str]]) -> bool:
        t = time.perf_counter()
        try:
            passed, expected, found = fn(ctx)
        except Exception as e:  # noqa: BLE001 - a check that raises fails, naming the exception
            passed, expected, found = False, ctx.pop("expecting", "the check to run"), _exception(e)
        checks.append(Check(check_name, bool(passed), expected, found, round(time.perf_counter() - t, 4)))
        return bool(passed)

    with torch.no_grad():
        ok = run("sites-found", lambda c: _sites_found(net, c))
        row = ctx.get("row", f"has no ARCHITECTURES row for {family!r}")
        if ok:
            run("resid-is-hidden-states", lambda c: _resid_is_hidden_states(net, x, c))
            ctx["before"] = _snapshot(net)
            first: dict[int, torch.Tensor] = {}
            with sites.trace(net, "attn", lambda _l, a: first.__setitem__(0, a.clone()), layers=[0]):
                ctx["reference"] = _logits(net, x)  # recording only: the logits are the model's own
            ctx["attn0"] = first.get(0)
            run("ones-mask-identity", lambda c: _ones_mask_identity(net, x, c))
            run("widths-match-config", lambda c: _widths_match_config(net, x, c))
            run("attn-mixes-positions", lambda c: _attn_mixes_positions(net, x, c))
            run("attn-ablation-changes-logits", lambda c: _ablation_changes(net, x, c, "attn"))
            run("mlp-ablation-changes-logits", lambda c: _ablation_changes(net, x, c, "mlp"))
            run("hooks-restore-model", lambda c: _hooks_restore(net, x, c))
    return PreflightReport(model=str(name), family=family, row=row, inputs=described, checks=tuple(checks),
                           seconds=round(time.perf_counter() - start, 4))


def preflight_inputs(lm) -> tuple[dict[str, torch.Tensor], str]:
    """A few real inputs for :func:`preflight` of a loaded model, and what they are.

    Text models (``lm.tokenizer`` set): :data:`SENTENCES` through the model's own tokenizer (with its
    special tokens), each cut to the shortest and to :data:`MAX_TOKENS`: ``input_ids`` of shape
    ``(4, seq)``. Image models: the first :data:`N_IMAGES` images of Fashion-MNIST's eval split
    (:func:`core.data.images.image_split`), as the harness's 1-channel ViT takes them, or through ViT-base's
    preprocessing at the config's ``image_size`` for an RGB model; ``pixel_values`` of shape
    ``(4, C, H, W)``. Without the Fashion-MNIST package, seeded random pixels (the description says so).

    Parameters
    ----------
    lm : core.zoo.models.LoadedModel
    """
    net = lm.model
    if lm.tokenizer is not None:
        ids = [lm.tokenizer(s)["input_ids"] for s in SENTENCES]
        seq = min(MAX_TOKENS, *(len(i) for i in ids))
        if lm.max_length:
            seq = min(seq, int(lm.max_length))
        x = torch.tensor([i[:seq] for i in ids], dtype=torch.long)
        return {"input_ids": x}, f"{len(SENTENCES)} fixed sentences, {seq} tokens each"
    from core.data.images import image_split, vit_base_processor
    from core.errors import MissingAssetError

    cfg = net.config
    channels, size = int(getattr(cfg, "num_channels", 3)), int(getattr(cfg, "image_size", 224))
    try:
        if channels == 1:
            pixels, _ = image_split("fashion-mnist", split="eval", n_images=N_IMAGES)
        else:
            pixels, _ = image_split("fashion-mnist", split="eval", n_images=N_IMAGES,
                                    processor=vit_base_processor(size))
        return {"pixel_values": pixels}, f"the first {N_IMAGES} Fashion-MNIST eval images"
    except MissingAssetError:
        from core.data.resampling import random_pixels

        return ({"pixel_values": random_pixels((N_IMAGES, channels, size, size), seed=0)},
                f"{N_IMAGES} random images, seed 0 (Fashion-MNIST is not installed)")


# ---------------------------------------------------------------------------------------------
# The checks: each returns (passed, expected, found) and may keep what later checks need in ctx.
# ---------------------------------------------------------------------------------------------

def _sites_found(net: nn.Module, ctx: dict) -> tuple[bool, str, str]:
    model_type = getattr(net.config, "model_type", None)
    ctx["expecting"] = f"a row for model_type {model_type!r} in core/zoo/sites.py ARCHITECTURES"
    arch = sites.architecture(net)
    ctx["row"] = _row(model_type, arch)
    ctx["arch"] = arch
    ctx.pop("expecting")
    missing = _missing(net, arch.blocks)
    if missing:
        return False, f"the block list at {arch.blocks}", missing
    bl = net.get_submodule(arch.blocks)
    if not isinstance(bl, (nn.ModuleList, nn.Sequential)) or len(bl) == 0:
        return False, f"a non-empty nn.ModuleList of blocks at {arch.blocks}", f"{type(bl).__name__}"
    for site, path in (("mlp", arch.mlp_out), ("attn", arch.attn_out)):
        for i, block in enumerate(bl):
            missing = _missing(block, path, prefix=f"{arch.blocks}.{i}")
            if missing:
                return False, f"the {_SITE_NAMES[site]}s' module at {arch.blocks}.{i}.{path}", missing
            weight = getattr(block.get_submodule(path), "weight", None)
            if not torch.is_tensor(weight) or weight.ndim != 2:
                return (False, f"a projection (a module with a 2-D weight) at {arch.blocks}.{i}.{path}, whose "
                        f"input is the {_SITE_NAMES[site]}s",
                        f"a {type(block.get_submodule(path)).__name__} with "
                        f"{'no weight' if not torch.is_tensor(weight) else f'a weight of shape {tuple(weight.shape)}'}")
    return (True, f"{len(bl)} blocks at {arch.blocks} with {arch.mlp_out} and {arch.attn_out} in each",
            f"{len(bl)} blocks, every module present")


def _resid_is_hidden_states(net: nn.Module, x: dict, ctx: dict) -> tuple[bool, str, str]:
    arch = ctx["arch"]
    n = sites.n_layers(net, "resid")
    seen: dict[int, torch.Tensor] = {}
    around: list[tuple[str, torch.Tensor, torch.Tensor]] = []  # (module path, input, output) outside blocks
    handles = []

    def keep(path):
        def hook(_m, args, kwargs, out):
            first = args[0] if args and torch.is_tensor(args[0]) else next(
                (v for v in kwargs.values() if torch.is_tensor(v)), None)
            out = out if torch.is_tensor(out) else (out[0] if isinstance(out, tuple) and out and
                                                    torch.is_tensor(out[0]) else None)
            if first is not None and out is not None:
                around.append((path, first, out))
        return hook

    try:
        for path, module in net.named_modules():
            if path and path != arch.blocks and not path.startswith(arch.blocks + "."):
                handles.append(module.register_forward_hook(keep(path), with_kwargs=True))
        widths: dict[str, dict[int, int]] = {s: {} for s in sites.SITES}
        ctx["widths"] = widths

        def width(site):
            return lambda layer, a: widths[site].__setitem__(layer, int(a.shape[-1]))

        def resid(layer, a):
            seen[layer] = a.clone()
            width("resid")(layer, a)

        with sites.trace(net, "resid", resid), sites.trace(net, "mlp", width("mlp")), \
                sites.trace(net, "attn", width("attn")):
            hidden = net(**x, output_hidden_states=True).hidden_states
    finally:
        for h in handles:
            h.remove()
    expected = (f"{n} residual layers (inputs of {arch.blocks}.0..{n - 2}, output of {arch.blocks}.{n - 2}) "
                f"equal to output_hidden_states")
    if hidden is None or len(hidden) != n:
        return False, expected, f"{'no' if hidden is None else len(hidden)} hidden states"
    if sorted(seen) != list(range(n)):
        return False, expected, f"the hooks saw layers {sorted(seen)}"
    for layer in range(n - 1):
        if seen[layer].shape != hidden[layer].shape or not torch.equal(seen[layer], hidden[layer]):
            return False, expected, f"layer {layer} (input of {arch.blocks}.{layer}) differs: " + _diff(
                seen[layer], hidden[layer])
    last, final = seen[n - 1], hidden[-1]
    if last.shape == final.shape and torch.equal(last, final):
        return True, expected, "all equal bit for bit"
    for path, inp, out in around:
        if inp.shape == last.shape and out.shape == final.shape and torch.equal(inp, last) \
                and torch.equal(out, final):
            return True, expected, f"all equal bit for bit (the last through {path}, a final norm)"
    return False, expected, f"the last layer (output of {arch.blocks}.{n - 2}) is neither the last hidden " \
                            f"state nor the input of a module outside the blocks that gives it: " + _diff(last, final)


def _ones_mask_identity(net: nn.Module, x: dict, ctx: dict) -> tuple[bool, str, str]:
    """One forward pass under all-ones masks at every site at once; on a difference, one per site to
    name it."""
    ref = ctx["reference"]
    expected = "logits bit-identical with an all-ones mask at every site"

    def ones(site):
        return sites.ablate(net, site, torch.ones(sites.n_layers(net, site), sites.site_width(net, site)), 1.0)

    with ones("mlp"), ones("attn"), ones("resid"):
        out = _logits(net, x)
    if torch.equal(out, ref):
        return True, expected, "identical at mlp, attn, resid"
    for site in sites.SITES:
        with ones(site):
            out = _logits(net, x)
        if not torch.equal(out, ref):
            return False, expected, f"{site} ({_SITE_NAMES[site]}s) changed them: {_diff(out, ref)}"
    return False, expected, f"mlp, attn and resid together changed them: {_diff(out, ref)}"


def _widths_match_config(net: nn.Module, x: dict, ctx: dict) -> tuple[bool, str, str]:
    arch = ctx["arch"]
    want = _config_widths(net.config)
    n_blocks = len(sites.blocks(net))
    seen = ctx["widths"]  # recorded in the hidden-states pass
    where = {"mlp": f"input of {arch.blocks}.*.{arch.mlp_out}", "attn": f"input of {arch.blocks}.*.{arch.attn_out}",
             "resid": f"between the blocks of {arch.blocks}"}
    expected = "; ".join(f"{s} {w} ({src})" if w is not None else f"{s}: {src}"
                         for s, (w, src) in want.items())
    for site in sites.SITES:
        n = n_blocks + (site == "resid")
        got = seen[site]
        if sorted(got) != list(range(n)):
            return False, expected, f"{site} hooks ({where[site]}) fired in layers {sorted(got)} of {n}"
        widths = sorted(set(got.values()))
        w, _src = want[site]
        declared = sites.site_width(net, site)
        if widths != [declared]:
            return False, expected, f"{site} activations ({where[site]}) {widths} wide; site_width says {declared}"
        if w is not None and widths != [w]:
            return False, expected, f"{site} activations ({where[site]}) {widths[0]} wide"
    return True, expected, "; ".join(f"{s} {sites.site_width(net, s)}" for s in sites.SITES) + " in every layer"


def _attn_mixes_positions(net: nn.Module, x: dict, ctx: dict) -> tuple[bool, str, str]:
    arch = ctx["arch"]
    expected = (f"layer-0 attention pre-out neurons (input of {arch.blocks}.0.{arch.attn_out}) at the last "
                f"position to change with the input at position 1")
    changed = dict(x)
    if "input_ids" in x:
        ids = x["input_ids"]
        if ids.shape[-1] < 3:
            return False, expected, f"inputs of {ids.shape[-1]} tokens (at least 3 needed)"
        vocab = int(getattr(net.config, "vocab_size", 0) or int(ids.max()) + 2)
        changed["input_ids"] = ids.clone()
        changed["input_ids"][:, 1] = (ids[:, 1] + 1) % vocab
        at = "token 1"
    else:
        patch = int(getattr(net.config, "patch_size", 1))
        changed["pixel_values"] = x["pixel_values"].clone()
        changed["pixel_values"][..., :patch, :patch] += 1.0
        at = "the first patch"
    seen: dict[int, torch.Tensor] = {}
    with sites.trace(net, "attn", lambda _l, a: seen.__setitem__(0, a.clone()), layers=[0]):
        _logits(net, changed)
    before, after = ctx["attn0"], seen.get(0)
    if before is None or after is None:
        return False, expected, "the hook at that path did not fire in layer 0"
    if torch.equal(before[..., -1, :], after[..., -1, :]):
        if torch.equal(before, after):
            return False, expected, f"changing {at} changed nothing there"
        return False, expected, (f"changing {at} changed only its own position there: the path's input comes "
                                 f"before attention mixes positions")
    return True, expected, f"changed by changing {at}"


def _ablation_changes(net: nn.Module, x: dict, ctx: dict, site: str) -> tuple[bool, str, str]:
    arch = ctx["arch"]
    path = arch.attn_out if site == "attn" else arch.mlp_out
    zeros = torch.zeros(sites.n_layers(net, site), sites.site_width(net, site))
    with sites.ablate(net, site, zeros, 0.0):
        out = _logits(net, x)
    expected = f"logits changed by zeroing every {_SITE_NAMES[site]} (input of {arch.blocks}.*.{path})"
    if torch.equal(out, ctx["reference"]):
        return False, expected, "logits bit-identical: the hook at that path does not reach the output"
    return True, expected, f"max |change| {float((out.float() - ctx['reference'].float()).abs().max()):.3g}"


def _hooks_restore(net: nn.Module, x: dict, ctx: dict) -> tuple[bool, str, str]:
    expected = "the hooks, parameters, buffers, mode and logits the model had before the checks"
    after = _snapshot(net)
    before = ctx["before"]
    for key in ("hooks", "params", "buffers"):
        if after[key] != before[key]:
            changed = sorted(k for k in set(before[key]) | set(after[key]) if before[key].get(k) != after[key].get(k))
            return False, expected, f"{key} changed at {', '.join(p or '<model>' for p in changed[:3])}" + (
                f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    if after["training"] != before["training"]:
        return False, expected, f"training mode {after['training']} (was {before['training']})"
    out = _logits(net, x)
    if not torch.equal(out, ctx["reference"]):
        return False, expected, f"logits differ: {_diff(out, ctx['reference'])}"
    return True, expected, "all as before, logits bit-identical"


# ---------------------------------------------------------------------------------------------

_SITE_NAMES = {"mlp": "MLP neuron", "attn": "attention pre-out neuron", "resid": "residual neuron"}


def _logits(net: nn.Module, x: dict) -> torch.Tensor:
    out = net(**x)
    return out.logits if hasattr(out, "logits") else out[0]


def _snapshot(net: nn.Module) -> dict:
    """What a hook context must leave as it found it: hooks per module, every parameter's and buffer's
    storage and version counter (an in-place edit bumps it), and the training flag."""
    return {
        "hooks": {p: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                  for p, m in net.named_modules()},
        "params": {p: (t.data_ptr(), t._version, tuple(t.shape)) for p, t in net.named_parameters()},
        "buffers": {p: (t.data_ptr(), t._version, tuple(t.shape)) for p, t in net.named_buffers()},
        "training": net.training,
    }


def _config_widths(cfg) -> dict[str, tuple[int | None, str]]:
    """Per site: (the width the config declares or None, the field(s) it comes from)."""
    d_model = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None)
    out: dict[str, tuple[int | None, str]] = {"resid": (int(d_model), "hidden_size") if d_model else
                                              (None, "config names no hidden_size")}
    mlp_field = next((f for f in _D_MLP_FIELDS if hasattr(cfg, f)), None)
    if mlp_field is None:
        out["mlp"] = (None, f"config names none of {', '.join(_D_MLP_FIELDS)}")
    else:
        value = getattr(cfg, mlp_field)
        out["mlp"] = ((int(value), mlp_field) if value is not None else
                      ((4 * int(d_model), f"4 x hidden_size ({mlp_field} is None)") if d_model else (None, mlp_field)))
    heads = getattr(cfg, "num_attention_heads", None)
    head_dim = getattr(cfg, "head_dim", None)
    if heads and head_dim:
        out["attn"] = (int(heads) * int(head_dim), f"num_attention_heads {heads} x head_dim {head_dim}")
    elif heads and d_model:
        out["attn"] = (int(d_model), f"num_attention_heads {heads} x hidden_size / heads")
    else:
        out["attn"] = (None, "config names no num_attention_heads")
    return {s: out[s] for s in sites.SITES}


def _missing(root: nn.Module, path: str, prefix: str = "") -> str | None:
    """None if ``root`` has a module at ``path``, else what is there instead: "no module 'x' under
    <the deepest existing prefix> (it has: <its children>)", with ``prefix`` before the paths."""
    module, done = root, [prefix] if prefix else []
    for part in path.split("."):
        child = module._modules.get(part)
        if not isinstance(child, nn.Module):
            children = ", ".join(module._modules) or "no submodules"
            return f"no module {part!r} under {'.'.join(done) or 'the model'} (it has: {children})"
        module = child
        done.append(part)
    return None


def _row(model_type: str | None, arch: sites.Architecture) -> str:
    shown = ", ".join(f"{f.name}={getattr(arch, f.name)!r}" for f in fields(arch)
                      if getattr(arch, f.name) != f.default)
    return f"ARCHITECTURES[{model_type!r}] = Architecture({shown})"


def _diff(a: torch.Tensor, b: torch.Tensor) -> str:
    if a.shape != b.shape:
        return f"shape {tuple(a.shape)} vs {tuple(b.shape)}"
    return f"max |difference| {float((a.float() - b.float()).abs().max()):.3g}"


def _exception(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:240]}{'...' if len(text) > 240 else ''}"


def _describe_inputs(x: dict) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in x.items())


__all__ = ["CHECKS", "Check", "PreflightReport", "preflight", "preflight_inputs"]
