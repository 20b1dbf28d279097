"""What each run of a sweep cost in training FLOPs, its dense prefix included.

A run pruned from a dense model (a from-dense run, grid `dense_tokens` or
`from_dense`) trained only its sparse phase itself; its dense prefix (the
dense run it continues, axes role "dense-pretrain") is another run of the store,
trained once however many runs continue it. Three ways to count:

- own: what this run's training did (the sparse phase only, for a pruned run);
- total (as if trained alone): own + the whole prefix, at dense cost (the
  prefix is dense: its sparse and dense FLOPs are equal). This is the figure
  to compare methods at equal compute, and the one `report` uses;
- amortised: own + the prefix divided among the runs that use it (the runs
  continuing it, plus the prefix itself when it is also a grid point).

The sweep's actual total is the sum of every run's own FLOPs, each run once.
"""

from __future__ import annotations

from typing import Any

ACCOUNTINGS = ("dense", "sparse")


def own_flops(row: dict[str, Any], accounting: str) -> float | None:
    """A run's own training FLOPs: measured when it finished, else planned."""
    key = f"train_flops_{accounting}"
    value = row.get(key)
    return float(value) if value is not None else (row.get("plan") or {}).get(key)


def _users(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many runs use each prefix: those continuing it, plus itself if a grid point."""
    users: dict[str, int] = {}
    for r in rows:
        for h in r.get("depends_on") or []:
            users[h] = users.get(h, 0) + 1
    for r in rows:
        if r["config_hash"] in users and r["axes"].get("role") != "dense-pretrain":
            users[r["config_hash"]] += 1
    return users


def compute_accounting(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per config hash: prefix_hash, prefix_flops, prefix_users and, for each
    accounting (dense, sparse), own_flops_*, total_flops_* (as if trained
    alone) and amortised_flops_*. `rows`: every run of the sweep (store.runs),
    prefixes included. A value is None when a FLOP count is missing."""
    by_hash = {r["config_hash"]: r for r in rows}
    users = _users(rows)
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        deps = [h for h in r.get("depends_on") or [] if h in by_hash]
        prefix = by_hash[deps[0]] if deps else None
        p_flops = own_flops(prefix, "dense") if prefix is not None else 0.0
        entry: dict[str, Any] = {
            "prefix_hash": prefix["config_hash"] if prefix else None,
            "prefix_flops": p_flops,
            "prefix_users": users.get(deps[0], 0) if deps else 0,
        }
        for acc in ACCOUNTINGS:
            own = own_flops(r, acc)
            ok = own is not None and p_flops is not None
            entry[f"own_flops_{acc}"] = own
            entry[f"total_flops_{acc}"] = own + p_flops if ok else None
            entry[f"amortised_flops_{acc}"] = (
                own + p_flops / max(1, entry["prefix_users"]) if ok else None
            )
        out[r["config_hash"]] = entry
    return out


def sweep_total_flops(rows: list[dict[str, Any]], accounting: str = "sparse") -> float:
    """What the sweep actually trained: the own FLOPs of every run that ran to
    its end (finished or diverged), each once, so a shared prefix counts once."""
    return float(
        sum(
            own_flops(r, accounting) or 0.0 for r in rows if r["status"] in ("finished", "diverged")
        )
    )
