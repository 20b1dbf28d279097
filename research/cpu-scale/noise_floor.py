"""Noise floor of a final validation loss: eval-sample spread and seed spread.

Trains GPT N=50k non-zeros on 0.4M byte tokens (issue 11's example run) at
S = 0 and 0.75 for seeds 0-2, then scores each final model on EVERY window of
the held-out split. From the per-window losses it reports:
- the standard error of an evaluation on 16k / 65k / 262k tokens (strided
  sample of a finite split, with the finite-population correction);
- the loss of the split's first 16k / 262k tokens (the old sampling);
- the seed-to-seed spread and the S = 0.75 - S = 0 gap.

    OMP_NUM_THREADS=1 .venv/bin/python research/cpu-scale/noise_floor.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from sparsescale.data.corpus import load_corpus
from sparsescale.models.sizing import build_model, config_class
from sparsescale.train.run import train

SEQ_LEN = 64


def window_losses(ckpt_path: Path, corpus) -> np.ndarray:
    """Mean next-token loss of each non-overlapping window of the validation split."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model = build_model("gpt", config_class("gpt")(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    n = (corpus.n_val - 1) // SEQ_LEN
    starts = corpus.n_train + np.arange(n) * SEQ_LEN
    offsets = np.arange(SEQ_LEN + 1)
    out = []
    with torch.no_grad():
        for i in range(0, n, 256):
            w = torch.from_numpy(corpus.tokens[starts[i:i + 256, None] + offsets].astype(np.int64))
            logits, _ = model(w[:, :-1], w[:, 1:])
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), w[:, 1:], reduction="none")
            out.append(nll.mean(dim=1).double().numpy())
    return np.concatenate(out)


def main(out_dir: str) -> None:
    out = Path(out_dir)
    corpus = load_corpus(None)
    rows = []
    for sparsity in (0.0, 0.75):
        for seed in (0, 1, 2):
            run = out / f"s{sparsity}-seed{seed}"
            res = train({"model": "gpt", "params": "50k", "sparsity": sparsity, "tokens": "0.4M", "seed": seed,
                         "optimizer": "adafactor", "eval_every": 10**6, "eval_tokens": 262144, "threads": 1},
                        run, quiet=True)
            w = window_losses(run / "checkpoint.pt", corpus)
            m = len(w)
            se = {k: float(w.std(ddof=1) / np.sqrt(k // SEQ_LEN) * np.sqrt(1 - (k // SEQ_LEN) / m))
                  for k in (16384, 65536, 262144)}
            rows.append({"sparsity": sparsity, "seed": seed, "final_loss_262k_strided": res.final_loss,
                         "full_split": float(w.mean()), "first_16k": float(w[:16384 // SEQ_LEN].mean()),
                         "first_262k": float(w[:262144 // SEQ_LEN].mean()), "windows": m, "se": se,
                         "train_wall_s": res.train_wall_s})
            print(json.dumps(rows[-1]), flush=True)
    full = {s: [r["full_split"] for r in rows if r["sparsity"] == s] for s in (0.0, 0.75)}
    print(json.dumps({"seed_sd": {s: float(np.std(v, ddof=1)) for s, v in full.items()},
                      "gap_0.75_minus_0": float(np.mean(full[0.75]) - np.mean(full[0.0]))}))


if __name__ == "__main__":
    main(sys.argv[1])
