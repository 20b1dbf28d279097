"""Command `train`: one run, from flags and/or a TOML file. Re-running the
same command resumes from the checkpoint in --out (or returns the finished
result).

The run flags are generated from RunConfig's fields (one `--field-name` per
field, help from `FIELD_HELP`), so a new setting is on the command line as soon
as it is in the config model; `--set key=value` reaches any field as well.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import require_torch
from sparsescale.train.config import FIELD_HELP, OLD_FIELD_NAMES, RunConfig

_FIXED = {"config", "out", "check", "quiet", "set", "force"}


def _run_options() -> list[inspect.Parameter]:
    """One keyword parameter per RunConfig field: a string parsed by RunConfig,
    or an --x/--no-x switch for booleans; None means "not given"."""
    params = []
    for name, info in RunConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = FIELD_HELP.get(name, "")
        if info.annotation is bool:
            option = typer.Option(None, f"{flag}/--no-{flag[2:]}", help=help_text)
            kind = Optional[bool]
        else:
            option = typer.Option(None, flag, help=help_text, metavar="<value>")
            kind = Optional[str]
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        )
    # Renamed settings keep their old flag for one release, hidden from --help.
    for old, new in OLD_FIELD_NAMES.items():
        option = typer.Option(None, "--" + old.replace("_", "-"), hidden=True, metavar="<value>")
        params.append(
            inspect.Parameter(
                old, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[str]
            )
        )
    return params


def _parse_sets(items: list[str]) -> dict[str, Any]:
    from sparsescale.errors import SparsescaleError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in RunConfig.model_fields:
            known = ", ".join(RunConfig.model_fields)
            raise SparsescaleError(f"--set {item}: expected key=value with a key among {known}")
        out[key] = value
    return out


def _via_set(exc, sets: dict[str, Any], fields: dict[str, Any]):
    """A config error about "--x, --y: ..." re-worded to name `--set x` for the
    settings that came from --set rather than from their own flags."""
    from sparsescale.errors import SparsescaleError

    head, sep, rest = str(exc).partition(": ")
    flags = head.split(", ")
    if not sep or not all(f.startswith("--") for f in flags):
        return exc
    names = [f[2:].replace("-", "_") for f in flags]
    if not any(n in sets and fields.get(n) is None for n in names):
        return exc
    return SparsescaleError(
        ", ".join(
            f"--set {n}" if n in sets and fields.get(n) is None else f for n, f in zip(names, flags)
        )
        + ": "
        + rest
    )


def train(
    config: Optional[Path],
    out: Path,
    check: bool,
    quiet: bool,
    set: list[str],
    force: bool,
    **fields: Any,
) -> None:
    """Train one model with gradual magnitude pruning and record its result.

    Example: sparsescale train --model gpt --params 200k --sparsity 0.75 --tokens 1M --out runs/x
    """
    require_torch("train")
    import json

    from sparsescale.errors import SparsescaleError
    from sparsescale.models.registry import get_family
    from sparsescale.train.config import load_config
    from sparsescale.train.plan import check_memory, plan_run
    from sparsescale.train.result import RESULT
    from sparsescale.train.run import train as train_run

    sets = _parse_sets(set or [])
    for old, new in OLD_FIELD_NAMES.items():
        if fields.get(old) is not None:
            print(
                f"note: --{old.replace('_', '-')} is now --{new.replace('_', '-')}; "
                "the old flag goes in the next release",
                file=sys.stderr,
            )
            if fields.get(new) is None:
                fields[new] = fields[old]
        fields.pop(old, None)
    try:
        cfg = load_config(config, **{**sets, **{k: v for k, v in fields.items() if v is not None}})
    except SparsescaleError as exc:
        raise _via_set(exc, sets, fields) from None
    if not check:
        from sparsescale.atomic import check_output
        from sparsescale.train.run import is_run_folder

        inputs = [p for p in (config, cfg.corpus, cfg.init_from) if p]
        check_output(out, inputs, what="--out", folder=True, ours=is_run_folder)
    # Every refusal comes before the run folder and its lock exist: a refused
    # run leaves nothing behind (the data handle is memoised for the run itself).
    plan, _ = plan_run(cfg)
    if not force:
        check_memory(plan.summary(), cfg, f"--params {cfg.params:,}")
    if check:
        print(json.dumps(plan.summary(), indent=2))
        return
    from sparsescale.locks import RunFolderLock

    # One process per run folder: the lock the sweep workers take (under
    # torchrun, rank 0 holds it for the job: the other ranks write nothing).
    with (
        RunFolderLock(out, what="--out")
        if os.environ.get("RANK", "0") == "0"
        else contextlib.nullcontext()
    ):
        r = train_run(cfg, out, quiet=quiet)
    where = Path(out) / RESULT
    if r.status == "diverged":
        print(f"diverged at step {r.diverged_at_step}: N={r.n_nonzero} S={r.sparsity:g} -> {where}")
        return
    unit = get_family(cfg.model).data_unit
    rate = (r.tokens_per_s if unit == "tokens" else r.examples_per_s) or 0.0
    mfu = f", MFU {r.mfu:.1%}" if r.mfu is not None else ""  # steady state: docs/gpu.md
    print(
        f"final validation loss {r.final_loss:.4f}  N={r.n_nonzero} S={r.sparsity:g} "
        f"{unit}={r.tokens if unit == 'tokens' else r.examples} ({rate:,.0f} {unit}/s{mfu}) -> "
        f"{where}"
    )


train.__signature__ = inspect.Signature(
    [
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Optional[Path],
            default=typer.Option(
                None, "--config", help="TOML file with these settings (flags override)."
            ),
        ),
        inspect.Parameter(
            "out",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Path,
            default=typer.Option(
                ..., "--out", help="Run folder: checkpoint.pt and result.json go here."
            ),
        ),
        inspect.Parameter(
            "check",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(
                False, "--check", help="Print the planned sizes and FLOPs; train nothing."
            ),
        ),
        inspect.Parameter(
            "quiet",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(
                False, "--quiet", help="No progress bar; print only the final line."
            ),
        ),
        inspect.Parameter(
            "force",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(
                False,
                "--force",
                help="Train even when the run's memory floor exceeds what the device has free.",
            ),
        ),
        inspect.Parameter(
            "set",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Optional[list[str]],
            default=typer.Option(
                None,
                "--set",
                metavar="<key=value>",
                help="key=value for any run setting (repeatable), e.g. --set lr_schedule=rsqrt.",
            ),
        ),
        *_run_options(),
    ]
)
app.command()(train)
