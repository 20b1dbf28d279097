"""Reading sweep results from CSV, JSON or Parquet, and column expressions.

`--params "24*12*768**2*scale*(1-sparsity)"` style expressions are parsed with
`ast` and evaluated over columns with numpy: only numbers, column names,
arithmetic and a few functions are allowed, so a spec file can never run code.
"""

from __future__ import annotations

import ast
import math
import operator
from pathlib import Path

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.userfile import read_json

FUNCTIONS = {
    "log": np.log,
    "log10": np.log10,
    "log2": np.log2,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
}
BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
# Bounds on a column expression: a real one is a short product of a few columns.
MAX_EXPRESSION = 2000  # characters
MAX_DEPTH = 100  # nested operations


class ColumnTable(dict):
    """Numeric columns by name: the part of a DataFrame that `evaluate` reads,
    for tables read without pandas (the paper's shipped sweeps: importing
    pandas costs a third of a second of a command that otherwise starts fast)."""

    @property
    def columns(self) -> list[str]:
        return list(self)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(next(iter(self.values()))) if self else 0, len(self))


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
            obj = read_json(p, "table")
            df = pd.DataFrame(obj) if isinstance(obj, (dict, list)) else None
            if df is None:
                raise SparsescaleError(
                    f"{p}: expected a JSON object of columns or a list of records"
                )
            if isinstance(obj, dict):  # orient=columns: keep the file's row order
                try:
                    df = (
                        df.loc[sorted(df.index, key=lambda k: int(k))]
                        if all(str(k).lstrip("-").isdigit() for k in df.index)
                        else df
                    )
                except (TypeError, ValueError):
                    pass
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            raise SparsescaleError(
                f"{p}: unknown table format {suffix or '(none)'}; use .csv, .json or .parquet (or "
                "a sweep store for fit)"
            )
    except SparsescaleError:
        raise
    except Exception as exc:  # parser errors from pandas/pyarrow
        raise SparsescaleError(
            f"{p}: cannot read table ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    _check_unique_columns(p, suffix, df)
    if df.shape[0] == 0:
        raise SparsescaleError(f"{p}: the table has no rows")
    return df.reset_index(drop=True)


def _check_unique_columns(path: Path, suffix: str, df) -> None:
    """A column named twice is ambiguous: pandas would silently rename the second
    (`loss.1`) and a flag naming it would read the first."""
    names = [str(c) for c in df.columns]
    if suffix in (".csv", ".tsv", ".txt"):
        import csv

        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            names = next(csv.reader(f, delimiter="\t" if suffix == ".tsv" else ","), names)
    elif suffix == ".json":
        names = _json_keys(path) or names
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SparsescaleError(
                f"{path}: column {name!r} appears twice in the header; rename one of them"
            )
        seen.add(name)


def _json_keys(path: Path) -> list[str]:
    """The column names of a JSON table with repeats kept (json.loads keeps the last)."""
    keys: list[str] = []
    columns = None

    def hook(pairs):
        nonlocal columns
        names = [k for k, _ in pairs]
        if len(set(names)) < len(names):
            columns = columns or names
        return dict(pairs)

    obj = read_json(path, "table", object_pairs_hook=hook)
    if columns is not None:
        return columns
    if isinstance(obj, dict):
        keys = list(obj)
    return keys


def evaluate(df, expr: str, flag: str, source: str = "data") -> np.ndarray:
    """Values of a column name or an arithmetic expression over columns.

    A string that is exactly a column name (even one like `val-loss`) is that
    column; otherwise it is parsed as an expression whose names are columns.
    """
    if expr in df.columns:
        return _numeric_column(df, expr, flag, source)
    if len(expr) > MAX_EXPRESSION:
        raise SparsescaleError(
            f"{flag}: the expression is {len(expr)} characters long; at most {MAX_EXPRESSION} are "
            "allowed"
        )
    try:
        tree = ast.parse(expr, mode="eval")
    except (RecursionError, MemoryError):  # CPython's parser on very deep nesting
        raise SparsescaleError(
            f"{flag}: the expression is nested too deeply (at most {MAX_DEPTH} levels)"
        ) from None
    except SyntaxError:
        raise SparsescaleError(
            f"{flag}: {expr!r} is neither a column of {source} nor a valid expression (columns: "
            f"{', '.join(map(str, df.columns))})"
        ) from None

    def ev(node, depth=0):
        if depth > MAX_DEPTH:
            raise SparsescaleError(
                f"{flag}: the expression is nested too deeply (at most {MAX_DEPTH} levels)"
            )
        if isinstance(node, ast.Expression):
            return ev(node.body, depth + 1)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            # numpy floats: 10**10**10 overflows to inf (reported per row below),
            # where Python floats would raise OverflowError and 1/0 ZeroDivisionError
            try:
                return np.float64(node.value)
            except OverflowError:
                raise SparsescaleError(
                    f"{flag}: the number {str(node.value)[:20]}... in {expr[:60]!r} is too large"
                ) from None
        if isinstance(node, ast.Name):
            if node.id not in df.columns:
                raise SparsescaleError(
                    f"{flag}: unknown column {node.id!r} in {expr!r} (columns of {source}: "
                    f"{', '.join(map(str, df.columns))})"
                )
            return _numeric_column(df, node.id, flag, source)
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            return BINARY[type(node.op)](ev(node.left, depth + 1), ev(node.right, depth + 1))
        if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
            return UNARY[type(node.op)](ev(node.operand, depth + 1))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FUNCTIONS
            and len(node.args) == 1
            and not node.keywords
        ):
            return FUNCTIONS[node.func.id](ev(node.args[0], depth + 1))
        raise SparsescaleError(
            f"{flag}: {expr!r}: only numbers, column names, + - * / ** and "
            f"{', '.join(FUNCTIONS)}() are allowed"
        )

    with np.errstate(all="ignore"):
        out = ev(tree)
    return np.broadcast_to(np.asarray(out, dtype=float), (df.shape[0],)).copy()


def _numeric_column(df, name: str, flag: str, source: str) -> np.ndarray:
    if isinstance(df, ColumnTable):
        return np.asarray(df[name], dtype=float)
    import pandas as pd

    col = pd.to_numeric(df[name], errors="coerce")
    bad = col.isna() & df[name].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise SparsescaleError(
            f"{source}: row {row + 1}, column {name!r} ({flag}): {df[name].iloc[row]!r} is not a "
            "number"
        )
    return col.to_numpy(dtype=float)


def check_values(
    values: np.ndarray, flag: str, source: str, column: str, *, positive=False, unit_interval=False
) -> None:
    """One clear error for the first bad value: NaN/inf, <= 0, or outside [0, 1)."""
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise SparsescaleError(
                f"{source}: row {i + 1}, {column} ({flag}): {v} is not a finite number"
            )
        if positive and v <= 0:
            raise SparsescaleError(f"{source}: row {i + 1}, {column} ({flag}): {v:g} must be > 0")
        if unit_interval and not (0.0 <= v < 1.0):
            raise SparsescaleError(
                f"{source}: row {i + 1}, {column} ({flag}): sparsity {v:g} is outside [0, 1)"
            )
