"""Training at scale on the CPU: gradient accumulation, clipping, activation
checkpointing, optimizer options, model FLOPs per token and the steady-state
rate and MFU that result.json records."""

from __future__ import annotations

import contextlib
import copy
import json
from types import SimpleNamespace

import pytest
import torch

from sparsescale.models.registry import get_family
from sparsescale.sweep.spec import config_hash
from sparsescale.train.config import RunConfig
from sparsescale.train.run import _forward_backward, _optimizer, train
from sparsescale.train.throughput import gpu_peak_flops, model_flops_per_example


def _gpt(**kw):
    from sparsescale.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(
        GPTConfig(
            vocab_size=64, seq_len=16, depth=2, width=32, head_dim=8, n_heads=4, mlp_hidden=64, **kw
        )
    )


def _session(model, micro):
    return SimpleNamespace(
        step_model=model,
        model=model,
        family=get_family("gpt"),
        micro=micro,
        world=1,
        autocast=contextlib.nullcontext,
    )


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_micro_batches_accumulate_the_full_batch_loss_and_gradient():
    torch.manual_seed(1)
    idx = torch.randint(0, 64, (8, 17))
    batch = [idx[:, :-1], idx[:, 1:]]
    full, parts = _gpt(), _gpt()
    loss_full = _forward_backward(_session(full, 8), batch)
    loss_parts = _forward_backward(_session(parts, 2), batch)  # 4 micro-batches of 2
    # the closed form: the mean cross-entropy of all 8 x 16 targets
    with torch.no_grad():
        assert float(loss_full) == pytest.approx(float(full(*batch)[1]), rel=1e-6)
    assert float(loss_parts) == pytest.approx(float(loss_full), rel=1e-6)
    for name, g in _grads(full).items():
        torch.testing.assert_close(_grads(parts)[name], g, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize(
    "family, shape", [("gpt", "gelu"), ("gpt", "geglu"), ("t5", None), ("vit", None)]
)
def test_activation_checkpointing_recomputes_the_same_gradients(family, shape):
    from sparsescale.models.recompute import recompute_blocks

    fam = get_family(family)
    cfg_cls = fam.config_class()
    if family == "gpt":
        cfg = cfg_cls(
            vocab_size=64,
            seq_len=16,
            depth=2,
            width=32,
            head_dim=8,
            n_heads=4,
            mlp_hidden=64,
            mlp=shape,
        )
        idx = torch.randint(0, 64, (4, 17))
        batch = [idx[:, :-1], idx[:, 1:]]
    elif family == "t5":
        cfg = cfg_cls(
            vocab_size=64, enc_depth=2, dec_depth=2, width=32, head_dim=8, n_heads=4, mlp_hidden=64
        )
        batch = [
            torch.randint(0, 64, (4, 12)),
            torch.randint(0, 64, (4, 6)),
            torch.randint(0, 64, (4, 6)),
        ]
    else:
        cfg = cfg_cls(
            image_size=8,
            channels=1,
            patch=4,
            n_classes=5,
            depth=2,
            width=32,
            head_dim=8,
            n_heads=4,
            mlp_hidden=64,
        )
        batch = [torch.randn(4, 1, 8, 8), torch.randint(0, 5, (4,))]
    torch.manual_seed(0)
    plain = fam.build(cfg)
    wrapped = copy.deepcopy(plain)
    assert recompute_blocks(wrapped) == (4 if family == "t5" else 2)
    fam.loss(plain, batch).backward()
    loss = fam.loss(wrapped, batch)
    loss.backward()
    with torch.no_grad():
        assert float(loss) == pytest.approx(float(fam.loss(plain, batch)), rel=1e-6)
    for name, g in _grads(plain).items():
        torch.testing.assert_close(_grads(wrapped)[name], g, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("mlp, pos", [("gelu", "learned"), ("geglu", "rope")])
def test_model_flops_per_token_is_the_closed_form_with_attention_and_head(mlp, pos):
    """6 (P_block + d V) + 12 L T d_attn per token (PaLM's count, train/throughput.py)."""
    from sparsescale.models.gpt import GPTConfig

    L, T, d, V, hd, heads, h = 3, 32, 48, 96, 8, 4, 80
    cfg = GPTConfig(
        vocab_size=V,
        seq_len=T,
        depth=L,
        width=d,
        head_dim=hd,
        n_heads=heads,
        mlp_hidden=h,
        mlp=mlp,
        pos=pos,
    )
    d_attn = hd * heads
    mlp_in = (2 if mlp == "geglu" else 1) * h
    p_block = L * (d * 3 * d_attn + d_attn * d + d * mlp_in + h * d)
    closed = 6 * (p_block + d * V) + 12 * L * T * d_attn
    idx = torch.zeros(2, T, dtype=torch.long)
    per_example = model_flops_per_example(get_family("gpt"), cfg, [idx, idx])
    assert per_example / T == closed


def test_peak_table_matches_device_names():
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989.4e12
    assert gpu_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu_peak_flops("NVIDIA H200") == 989.4e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert gpu_peak_flops("Tesla T4") is None


def test_optimizer_options_reach_the_optimizer():
    model = _gpt()
    adamw = _optimizer(
        RunConfig(params="10k", steps=1, optimizer="adamw", betas="0.8,0.9", weight_decay=0.1),
        model,
        torch.device("cpu"),
    )
    assert adamw.defaults["betas"] == (0.8, 0.9)
    decayed, plain = adamw.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() >= 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() < 2 for p in plain["params"])
    ada = _optimizer(
        RunConfig(params="10k", steps=1, beta1=0.9, factored=True), model, torch.device("cpu")
    )
    assert ada.defaults["beta1"] == 0.9 and ada.defaults["factored"] and len(ada.param_groups) == 1


def test_identity_keeps_old_hashes_and_takes_what_changes_results():
    base = {"model": "gpt", "params": 50000, "tokens": 10**6, "sparsity": 0.5, "seed": 0}
    h = config_hash(base)
    for neutral in (
        {"grad_clip": None},
        {"weight_decay": 0.0},
        {"beta1": None},
        {"factored": False},
        {"micro_batch": 4},
        {"activation_checkpointing": True},
    ):
        assert config_hash({**base, **neutral}) == h, neutral
    for changes in ({"grad_clip": 1.0}, {"weight_decay": 0.1}, {"beta1": 0.9}, {"factored": True}):
        assert config_hash({**base, **changes}) != h, changes
    adamw = {**base, "optimizer": "adamw"}
    assert config_hash({**adamw, "betas": [0.9, 0.95]}) == config_hash(
        adamw
    )  # the hard-wired betas
    assert config_hash({**adamw, "betas": [0.9, 0.99]}) != config_hash(adamw)
    a = RunConfig(**adamw, betas="0.9,0.99").identity()
    assert json.loads(json.dumps(a)) == a  # compared with the identity read back from result.json


SMALL = dict(params="20k", steps=8, batch=8, seq_len=32, threads=1, eval_tokens=512, ckpt_every=1)


@pytest.mark.slow
def test_micro_batch_run_equals_the_full_batch_run_and_records_its_speed(small_corpus, tmp_path):
    full = train(RunConfig(**SMALL, corpus=str(small_corpus)), tmp_path / "full", quiet=True)
    micro = train(
        RunConfig(**SMALL, corpus=str(small_corpus), micro_batch=2, activation_checkpointing=True),
        tmp_path / "micro",
        quiet=True,
    )
    assert micro.final_loss == pytest.approx(full.final_loss, rel=1e-5)
    for a, b in zip(micro.curve, full.curve):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    r = json.loads((tmp_path / "full" / "result.json").read_text())
    assert r["warmup_steps_excluded"] == 5 and r["steady_steps"] == 3
    assert r["model_flops_per_token"] * 32 == r["model_flops_per_example"]
    assert r["mfu"] == pytest.approx(
        r["model_flops_per_token"] * r["steady_tokens_per_s"] / r["peak_flops"]
    )
    assert 0 < r["mfu"] < 1 and "measured" in r["peak_flops_source"]
    assert r["world_size"] == 1 and len(r["device_names"]) == 1
    # clipping changes what is computed. Adafactor divides by its own gradient
    # RMS, so scaling every gradient by one factor does little; a factor that
    # changes from step to step shifts its second moment: 2e-3 here, against
    # the 1e-7 rounding of accumulation above.
    clipped = train(
        RunConfig(**SMALL, corpus=str(small_corpus), grad_clip=1e-4), tmp_path / "clip", quiet=True
    )
    assert abs(clipped.final_loss - full.final_loss) > 1e-3
    # a finished run with options that travel as JSON lists is recognised, not retrained
    cfg = RunConfig(**SMALL, corpus=str(small_corpus), optimizer="adamw", betas="0.9,0.99")
    first = train(cfg, tmp_path / "adamw", quiet=True)
    mtime = (tmp_path / "adamw" / "result.json").stat().st_mtime_ns
    assert train(cfg, tmp_path / "adamw", quiet=True).final_loss == first.final_loss
    assert (tmp_path / "adamw" / "result.json").stat().st_mtime_ns == mtime
