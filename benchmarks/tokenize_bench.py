"""Tokenizing throughput (MB/s of corpus files) and peak memory of a cache build.

The corpus is a multi-GB JSONL made by repeating the reST sources of Debian's
linux-doc-6.1 (one document per source file, each copy tagged so no two
documents are equal), written once under --work. Each measured build runs
`load_corpus` in a fresh subprocess with an empty cache; this process samples
the resident set of that subprocess and all its workers every 50 ms and reports
the peak of the sum (what the machine must hold), beside the build's MB/s.

The tokenizer.json is a 32k byte-level BPE trained here on linux-doc (the size
class of GPT-2's 50k and Llama's 32k), so the figure is for a real BPE file.

    nice -n 10 .venv/bin/python benchmarks/tokenize_bench.py --gb 2 --tokenizer file
    nice -n 10 .venv/bin/python benchmarks/tokenize_bench.py --gb 0.5 --tokenizer byte --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

SOURCES = Path("/usr/share/doc/linux-doc-6.1/html/_sources")


def make_corpus(folder: Path, gb: float) -> int:
    """JSONL files of about 256 MB until `gb` GB; returns the bytes written."""
    target = int(gb * (1 << 30))
    done = folder / f"corpus-{gb}gb"
    if done.exists():
        return sum(p.stat().st_size for p in done.iterdir())
    docs = [p.read_text(errors="replace") for p in sorted(SOURCES.rglob("*.txt"))]
    tmp = folder / "corpus.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    written, copy, part = 0, 0, 0
    f = open(tmp / f"part-{part:03d}.jsonl", "w")
    while written < target:
        for d in docs:
            line = json.dumps({"text": f"[copy {copy}] {d}"}) + "\n"
            f.write(line)
            written += len(line.encode())
            if f.tell() > 256 << 20:
                f.close()
                part += 1
                f = open(tmp / f"part-{part:03d}.jsonl", "w")
            if written >= target:
                break
        copy += 1
    f.close()
    tmp.rename(done)
    return written


def make_tokenizer(folder: Path) -> Path:
    path = folder / "bpe32k.json"
    if not path.exists():
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=32000,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(
            (p.read_text(errors="replace") for p in sorted(SOURCES.rglob("*.txt"))), trainer
        )
        tok.save(str(path))
    return path


CHILD = """
import sys, time
from sparsescale.data.corpus import load_corpus
t = time.perf_counter()
c = load_corpus(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]))
print(time.perf_counter() - t, len(c.tokens), c.tokens.dtype)
"""


def measure(corpus: Path, tokenizer: str, workers: int, cache: Path) -> dict:
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, SPARSESCALE_CACHE=str(cache))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(corpus), tokenizer, str(workers)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    out = proc.stdout.read().split()
    if proc.returncode != 0:
        raise SystemExit(f"build failed (exit {proc.returncode})")
    shutil.rmtree(cache, ignore_errors=True)
    return {
        "seconds": float(out[0]),
        "tokens": int(out[1]),
        "dtype": out[2],
        "peak_rss_mb": peak / 2**20,
    }


def encoder_alone(corpus: Path, tokenizer: str, mb: int = 32) -> float:
    """MiB/s of the bare encoder (tokenizers' encode_batch on all its threads, or
    UTF-8 encoding) over the first `mb` MiB of documents, already in memory: the
    ceiling the streaming build is compared with."""
    from sparsescale.data.tokenizer import Encoder

    docs, size = [], 0
    with open(sorted(corpus.iterdir())[0]) as f:
        for line in f:
            docs.append(json.loads(line)["text"])
            size += len(line)
            if size > mb << 20:
                break
    enc = Encoder("byte", None) if tokenizer == "byte" else Encoder("file", Path(tokenizer))
    t = time.perf_counter()
    enc.encode(docs)
    return size / 2**20 / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--tokenizer", choices=["byte", "file"], default="file")
    ap.add_argument("--workers", type=int, nargs="*", default=[len(os.sched_getaffinity(0))])
    ap.add_argument("--work", type=Path, default=Path("/tmp/sparsescale-tokenize-bench"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    size = make_corpus(args.work, args.gb)
    tokenizer = "byte" if args.tokenizer == "byte" else str(make_tokenizer(args.work))
    print(
        f"corpus: {size / 2**20:.0f} MiB of JSONL (linux-doc-6.1 sources repeated); tokenizer: "
        f"{args.tokenizer}; "
        f"cores: {len(os.sched_getaffinity(0))}"
    )
    print(
        "encoder alone, in memory: "
        f"{encoder_alone(args.work / f'corpus-{args.gb}gb', tokenizer):.1f} MiB/s"
    )
    for w in args.workers:
        r = measure(args.work / f"corpus-{args.gb}gb", tokenizer, w, args.work / "cache")
        print(
            f"workers {w}: {r['seconds']:.1f} s, {size / 2**20 / r['seconds']:.1f} MiB/s, "
            f"{r['tokens'] / 1e6:.0f}M {r['dtype']} tokens, peak RSS (process + workers) "
            f"{r['peak_rss_mb']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
