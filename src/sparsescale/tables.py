"""Reading sweep results from CSV, JSON or Parquet, and column expressions.

`--params "24*12*768**2*scale*(1-sparsity)"` style expressions are parsed with
`ast` and evaluated over columns with numpy: only numbers, column names,
arithmetic and a few functions are allowed, so a spec file can never run code.
"""

from __future__ import annotations

import ast
import json
import math
import operator
from pathlib import Path

import numpy as np

from sparsescale.errors import SparsescaleError

FUNCTIONS = {"log": np.log, "log10": np.log10, "log2": np.log2, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs}
BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv, ast.Pow: operator.pow}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def read_table(path: str | Path):
    """A pandas DataFrame from .csv, .json (pandas orient=columns or records) or .parquet."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise SparsescaleError(f"{p}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            df = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
        elif suffix == ".json":
            try:
                obj = json.loads(p.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise SparsescaleError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
            df = pd.DataFrame(obj) if isinstance(obj, (dict, list)) else None
            if df is None:
                raise SparsescaleError(f"{p}: expected a JSON object of columns or a list of records")
            if isinstance(obj, dict):  # orient=columns: keep the file's row order
                try:
                    df = df.loc[sorted(df.index, key=lambda k: int(k))] if all(str(k).lstrip("-").isdigit() for k in df.index) else df
                except (TypeError, ValueError):
                    pass
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            raise SparsescaleError(f"{p}: unknown table format {suffix or '(none)'}; use .csv, .json or .parquet")
    except SparsescaleError:
        raise
    except Exception as exc:  # parser errors from pandas/pyarrow
        raise SparsescaleError(f"{p}: cannot read table ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if df.shape[0] == 0:
        raise SparsescaleError(f"{p}: the table has no rows")
    return df.reset_index(drop=True)


def evaluate(df, expr: str, flag: str, source: str = "data") -> np.ndarray:
    """Values of a column name or an arithmetic expression over columns.

    A string that is exactly a column name (even one like `val-loss`) is that
    column; otherwise it is parsed as an expression whose names are columns.
    """
    if expr in df.columns:
        return _numeric_column(df, expr, flag, source)
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise SparsescaleError(
            f"{flag}: {expr!r} is neither a column of {source} nor a valid expression (columns: {', '.join(map(str, df.columns))})"
        ) from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in df.columns:
                raise SparsescaleError(
                    f"{flag}: unknown column {node.id!r} in {expr!r} (columns of {source}: {', '.join(map(str, df.columns))})"
                )
            return _numeric_column(df, node.id, flag, source)
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            return BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
            return UNARY[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS and len(node.args) == 1 and not node.keywords:
            return FUNCTIONS[node.func.id](ev(node.args[0]))
        raise SparsescaleError(f"{flag}: {expr!r}: only numbers, column names, + - * / ** and {', '.join(FUNCTIONS)}() are allowed")

    with np.errstate(all="ignore"):
        out = ev(tree)
    return np.broadcast_to(np.asarray(out, dtype=float), (df.shape[0],)).copy()


def _numeric_column(df, name: str, flag: str, source: str) -> np.ndarray:
    import pandas as pd

    col = pd.to_numeric(df[name], errors="coerce")
    bad = col.isna() & df[name].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise SparsescaleError(f"{source}: row {row + 1}, column {name!r} ({flag}): {df[name].iloc[row]!r} is not a number")
    return col.to_numpy(dtype=float)


def check_values(values: np.ndarray, flag: str, source: str, column: str, *, positive=False, unit_interval=False) -> None:
    """One clear error for the first bad value: NaN/inf, <= 0, or outside [0, 1)."""
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise SparsescaleError(f"{source}: row {i + 1}, {column} ({flag}): {v} is not a finite number")
        if positive and v <= 0:
            raise SparsescaleError(f"{source}: row {i + 1}, {column} ({flag}): {v:g} must be > 0")
        if unit_interval and not (0.0 <= v < 1.0):
            raise SparsescaleError(f"{source}: row {i + 1}, {column} ({flag}): sparsity {v:g} is outside [0, 1)")
