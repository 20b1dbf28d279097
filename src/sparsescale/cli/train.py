"""Command `train`: one run, from flags and/or a TOML file. Re-running the
same command resumes from the checkpoint in --out (or returns the finished
result)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app


@app.command()
def train(
    model: Optional[str] = typer.Option(None, "--model", help="gpt, t5 or vit [default: gpt]."),
    params: Optional[str] = typer.Option(None, "--params", help="Target NON-ZERO block parameters N, e.g. 200k."),
    sparsity: Optional[float] = typer.Option(None, "--sparsity", help="Final sparsity S in [0, 1) [default: 0, or 1-n/m]."),
    pattern: Optional[str] = typer.Option(None, "--pattern", help="n:m, n kept in every m along the input dim (2:4)."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Data budget in tokens (gpt, t5), e.g. 2M."),
    examples: Optional[str] = typer.Option(None, "--examples", help="Data budget in examples (vit)."),
    steps: Optional[str] = typer.Option(None, "--steps", help="Data budget in steps."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of init and data order [default: 0]."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Global batch size (sequences or images)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length (text)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adafactor (sparsity-aware) or adamw."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Dense checkpoint to prune (its width is kept)."),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Folder/file of text (or images for vit)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="byte or bpe."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto [default: cpu]."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile (CUDA only)."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Steps between validation points."),
    ckpt_every: Optional[int] = typer.Option(None, "--ckpt-every", help="Steps between checkpoints."),
    eval_tokens: Optional[int] = typer.Option(None, "--eval-tokens", help="Validation tokens (text)."),
    eval_examples: Optional[int] = typer.Option(None, "--eval-examples", help="Validation examples (vit)."),
    prune_every: Optional[int] = typer.Option(None, "--prune-every", help="Steps between mask updates."),
    depth: Optional[int] = typer.Option(None, "--depth", help="Blocks (per stack for t5) [family default]."),
    head_dim: Optional[int] = typer.Option(None, "--head-dim", help="Attention head width [family default]."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with these settings (flags override)."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoint.pt and result.json go here."),
    check: bool = typer.Option(False, "--check", help="Print the planned sizes and FLOPs; train nothing."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar; print only the final line."),
) -> None:
    """Train one model with gradual magnitude pruning and record its result.

    Example: sparsescale train --model gpt --params 200k --sparsity 0.75 --tokens 1M --out runs/x
    """
    import json

    from sparsescale.train.config import load_config

    cfg = load_config(
        config, model=model, params=params, sparsity=sparsity, pattern=pattern, tokens=tokens,
        examples=examples, steps=steps, seed=seed, batch=batch, seq_len=seq_len, lr=lr, optimizer=optimizer,
        init_from=str(init_from) if init_from else None, corpus=corpus, tokenizer=tokenizer, threads=threads,
        device=device, compile=compile, eval_every=eval_every, ckpt_every=ckpt_every, eval_tokens=eval_tokens,
        eval_examples=eval_examples, prune_every=prune_every, depth=depth, head_dim=head_dim,
    )
    from sparsescale.train.run import check_config, train as train_run

    if check:
        print(json.dumps(check_config(cfg), indent=2))
        return
    result = train_run(cfg, out, quiet=quiet)
    unit = "tokens" if cfg.model != "vit" else "examples"
    rate = result.get(f"{unit}_per_s") or 0.0
    if result["status"] == "diverged":
        print(f"diverged at step {result['diverged_at_step']}: N={result['n_nonzero']} S={result['sparsity']:g} "
              f"-> {Path(out) / 'result.json'}")
    else:
        print(f"final validation loss {result['final_loss']:.4f}  N={result['n_nonzero']} S={result['sparsity']:g} "
              f"{unit}={result['examples'] * (result['seq_len'] or 1)} ({rate:,.0f} {unit}/s) "
              f"-> {Path(out) / 'result.json'}")
