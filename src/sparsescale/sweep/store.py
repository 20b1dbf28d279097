"""The sweep store: one SQLite file holding sweeps, runs and loss curves.

A run is identified by its config hash, so re-running a spec finds the runs it
already has. Only the sweep coordinator writes (workers send results back to
it); every write is one transaction, and WAL mode lets `export` and `report`
read while a sweep is running.

Run status: pending -> running -> finished | diverged | failed. A run left
"running" by a coordinator that died is interrupted: the next coordinator
dispatches it again and training resumes from the run's checkpoint.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from sparsescale.errors import SparsescaleError
from sparsescale.train.result import TERMINAL, RunResult

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    spec_hash TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    config_hash TEXT PRIMARY KEY,
    config_json TEXT NOT NULL,
    axes_json TEXT NOT NULL,
    plan_json TEXT NOT NULL DEFAULT '{}',
    depends_on TEXT NOT NULL DEFAULT '[]',
    out_dir TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'finished', 'diverged', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,   -- times dispatched to a worker
    failures INTEGER NOT NULL DEFAULT 0,   -- times a worker reported an error or died
    failure_reason TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    model TEXT, sparsity REAL, pattern TEXT, seed INTEGER,
    n_nonzero INTEGER, total_params INTEGER, embedding_params INTEGER,
    tokens INTEGER, examples INTEGER, steps INTEGER,
    train_flops_dense REAL, train_flops_sparse REAL,
    final_loss REAL, wall_s REAL, tokens_per_s REAL, diverged_at_step INTEGER,
    result_json TEXT
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
    config_hash TEXT NOT NULL REFERENCES runs(config_hash),
    PRIMARY KEY (sweep_id, config_hash)
);
CREATE TABLE IF NOT EXISTS curves (
    config_hash TEXT NOT NULL REFERENCES runs(config_hash),
    step INTEGER NOT NULL,
    tokens INTEGER,
    val_loss REAL,
    train_loss REAL,
    PRIMARY KEY (config_hash, step)
);
CREATE TABLE IF NOT EXISTS attempt_log (
    config_hash TEXT NOT NULL REFERENCES runs(config_hash),
    outcome TEXT NOT NULL,   -- finished | diverged | failed
    node TEXT,               -- where it ran (a Ray node id or a host name), when known
    resumed INTEGER,         -- 1: it started from durable files of an earlier attempt
    reason TEXT,
    ended_at REAL NOT NULL
);
"""

_RESULT_COLUMNS = (
    "n_nonzero",
    "total_params",
    "embedding_params",
    "tokens",
    "examples",
    "steps",
    "train_flops_dense",
    "train_flops_sparse",
    "final_loss",
    "wall_s",
    "tokens_per_s",
    "diverged_at_step",
)


def _join(root: Any, name: str) -> str:
    # a storage URI is not a Path: Path would fold its "//"
    return f"{str(root).rstrip('/')}/{name}" if "://" in str(root) else str(Path(root) / name)


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return None
    return x


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _readonly_uri(path: Path) -> str:
    """A read-only URI that leaves no trace: with no -wal file beside it the whole
    database is in the main file, and `immutable` opens it without creating the
    -wal/-shm files a WAL-mode reader otherwise leaves behind. With a -wal file
    (a coordinator is writing) a plain read-only open sees its commits."""
    from urllib.parse import quote

    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    return uri if path.with_name(path.name + "-wal").exists() else uri + "&immutable=1"


def check_store(path: Path) -> None:
    """Raise unless `path` is a sparsescale store of this or an older schema
    (or an empty SQLite file). Opens it read-only; never writes."""
    with open(path, "rb") as f:
        if f.read(16) != _SQLITE_MAGIC:
            raise SparsescaleError(
                f"{path}: not a sparsescale sweep store (not an SQLite file); it was left untouched"
            )
    try:
        conn = sqlite3.connect(_readonly_uri(path), uri=True, timeout=30.0)
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            version = None
            if "meta" in tables:
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = row[0] if row else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise SparsescaleError(
            f"{path}: not a readable sweep store ({exc}); it was left untouched"
        ) from None
    if not tables:
        return  # an empty database: becomes a store
    if version is None:
        raise SparsescaleError(
            f"{path}: an SQLite file of another program (tables: {', '.join(sorted(tables))});"
            " it was left untouched; give a different --store"
        )
    try:
        newer = int(version) > SCHEMA_VERSION
    except ValueError:
        newer = True
    if newer:
        raise SparsescaleError(
            f"{path}: a store of a newer sparsescale (schema {version}, this version reads "
            f"up to {SCHEMA_VERSION}); it was left untouched; upgrade sparsescale"
        )


class Store:
    """A sweep store at `path` (created if missing unless `readonly`)."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        if readonly and not self.path.exists():
            raise SparsescaleError(f"{self.path}: no such sweep store")
        if self.path.is_dir():
            raise SparsescaleError(f"{self.path}: is a folder, not a sweep store")
        # Read-only look first: a file that is not ours, or a store of a newer
        # version, is refused before anything (journal mode included) changes it.
        if self.path.exists() and self.path.stat().st_size > 0:
            check_store(self.path)
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SparsescaleError(
                    f"{self.path}: cannot create the store's folder ({exc.strerror})"
                ) from None
        try:
            if readonly:
                self.conn = sqlite3.connect(
                    _readonly_uri(self.path), uri=True, timeout=30.0, isolation_level=None
                )
            else:
                self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                self.conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a committed result survives an OS crash, not only a process kill.
                self.conn.execute("PRAGMA synchronous=FULL")
                with self.transaction():
                    for stmt in _SCHEMA.split(";"):
                        if stmt.strip():
                            self.conn.execute(stmt)
                    self.conn.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("SELECT count(*) FROM runs").fetchone()
        except sqlite3.DatabaseError as exc:
            raise SparsescaleError(f"{self.path}: not a sparsescale sweep store ({exc})") from None

    def _read(self, sql: str, args=()) -> list[sqlite3.Row]:
        """Every read goes through here: a damaged file is one clear error, not a traceback."""
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise SparsescaleError(
                f"{self.path}: the store is damaged and cannot be read ({exc})"
            ) from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing (coordinator only) -------------------------------------------------
    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT, rolled back on error."""
        store = self

        class _Tx:
            def __enter__(self_inner):
                store.conn.execute("BEGIN IMMEDIATE")
                return store.conn

            def __exit__(self_inner, exc_type, exc, tb):
                try:
                    store.conn.execute("ROLLBACK" if exc_type else "COMMIT")
                except sqlite3.DatabaseError as commit_exc:
                    exc = exc or commit_exc
                    exc_type = type(exc)
                if exc_type is not None and issubclass(exc_type, sqlite3.DatabaseError):
                    # disk full, read-only file, damaged page: the transaction is rolled back
                    raise SparsescaleError(
                        f"{store.path}: cannot write the store ({exc}); "
                        "its committed contents are unchanged"
                    ) from None
                return False

        return _Tx()

    def add_sweep(
        self, name: str, spec: dict[str, Any], runs: Iterable, out_root: Path, note: str = ""
    ) -> int:
        """Record a sweep and its runs; runs already present are kept as they are."""
        import hashlib

        spec_json = json.dumps(spec, sort_keys=True, default=str)
        spec_hash = hashlib.sha256(spec_json.encode()).hexdigest()
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "INSERT OR IGNORE INTO sweeps (name, spec_json, spec_hash, note, created_at) "
                "VALUES (?,?,?,?,?)",
                (name, spec_json, spec_hash, note, now),
            )
            sweep_id = c.execute(
                "SELECT id FROM sweeps WHERE spec_hash = ?", (spec_hash,)
            ).fetchone()[0]
            for run in runs:
                c.execute(
                    "INSERT OR IGNORE INTO runs (config_hash, config_json, axes_json, plan_json, "
                    "depends_on, out_dir,"
                    " created_at, model, sparsity, pattern, seed) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        run.config_hash,
                        json.dumps(run.config, sort_keys=True),
                        json.dumps(run.axes, sort_keys=True),
                        json.dumps(run.plan, sort_keys=True),
                        json.dumps(list(run.depends_on)),
                        _join(out_root, run.config_hash[:16]),
                        now,
                        run.config.get("model"),
                        run.config.get("sparsity"),
                        run.config.get("pattern"),
                        run.config.get("seed"),
                    ),
                )
                c.execute(
                    "INSERT OR IGNORE INTO sweep_runs VALUES (?, ?)", (sweep_id, run.config_hash)
                )
        return sweep_id

    def mark_running(self, config_hash: str) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET status='running', attempts=attempts+1, started_at=? WHERE "
                "config_hash=?",
                (time.time(), config_hash),
            )

    def record_failure(self, config_hash: str, reason: str) -> int:
        """Count a failed attempt and keep its reason; returns the failure count."""
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET status='failed', failures=failures+1, failure_reason=?, "
                "finished_at=?"
                " WHERE config_hash=?",
                (reason[:4000], time.time(), config_hash),
            )
            return c.execute(
                "SELECT failures FROM runs WHERE config_hash=?", (config_hash,)
            ).fetchone()[0]

    def record_result(self, config_hash: str, result: RunResult | dict[str, Any]) -> None:
        """Save a finished or diverged run and its curve in one transaction. A dict
        (a worker's reply, a custom runner's record) is kept whole in result_json;
        the columns come from its RunResult reading."""
        raw = result.to_dict() if isinstance(result, RunResult) else dict(result)
        r = result if isinstance(result, RunResult) else RunResult.from_dict(raw)
        if not r.done:
            raise ValueError(
                f"run {config_hash[:12]}: result status {r.status!r} is not one of {TERMINAL}"
            )
        values = [_finite_or_none(getattr(r, k)) for k in _RESULT_COLUMNS]
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET status=?, finished_at=?, pattern=?, sparsity=?, "
                + ", ".join(f"{k}=?" for k in _RESULT_COLUMNS)
                + ", result_json=? WHERE config_hash=?",
                (
                    r.status,
                    time.time(),
                    r.pattern,
                    r.sparsity,
                    *values,
                    json.dumps(raw, default=str, allow_nan=True),
                    config_hash,
                ),
            )
            c.execute("DELETE FROM curves WHERE config_hash=?", (config_hash,))
            c.executemany(
                "INSERT OR REPLACE INTO curves VALUES (?,?,?,?,?)",
                [
                    (
                        config_hash,
                        p.get("step"),
                        p.get("tokens"),
                        _finite_or_none(p.get("val_loss")),
                        _finite_or_none(p.get("train_loss")),
                    )
                    for p in r.curve or []
                ],
            )

    # -- reading --------------------------------------------------------------------
    def runs(
        self, sweep_id: int | Iterable[int] | None = None, status: str | Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Runs as dicts (config, axes and plan decoded), oldest first; `sweep_id`:
        one sweep's id or several (each run once)."""
        sql, args = "SELECT r.* FROM runs r", []
        where = []
        if sweep_id is not None:
            ids = [sweep_id] if isinstance(sweep_id, int) else list(sweep_id)
            where.append(
                f"r.config_hash IN (SELECT config_hash FROM sweep_runs WHERE sweep_id IN "
                f"({','.join('?' * len(ids))}))"
            )
            args += ids
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"r.status IN ({','.join('?' * len(statuses))})")
            args += statuses
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.created_at, r.rowid"
        out = []
        for row in self._read(sql, args):
            d = dict(row)
            d["config"] = json.loads(d.pop("config_json"))
            d["axes"] = json.loads(d.pop("axes_json"))
            d["plan"] = json.loads(d.pop("plan_json"))
            d["depends_on"] = json.loads(d["depends_on"])
            # The typed record (None until the run ends); result_json stays as written.
            d["result"] = (
                RunResult.from_dict(json.loads(d["result_json"])) if d.get("result_json") else None
            )
            out.append(d)
        return out

    def run(self, config_hash: str) -> dict[str, Any] | None:
        found = [r for r in self.runs() if r["config_hash"] == config_hash]
        return found[0] if found else None

    def curves(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for row in self._read("SELECT * FROM curves ORDER BY config_hash, step"):
            out.setdefault(row["config_hash"], []).append(
                {
                    "step": row["step"],
                    "tokens": row["tokens"],
                    "val_loss": row["val_loss"],
                    "train_loss": row["train_loss"],
                }
            )
        return out

    def sweeps(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._read("SELECT * FROM sweeps ORDER BY id")]

    def sweep_ids(self, name: str | None, what: str = "--sweep") -> list[int]:
        """The ids of the sweeps called `name` (a spec edited and re-run keeps its
        name: all its versions). With no name: the store's only sweep name, else
        an error that lists them. Raises SparsescaleError for an unknown name."""
        sweeps = self.sweeps()
        names = sorted({s["name"] for s in sweeps})
        if name is None:
            if len(names) > 1:
                raise SparsescaleError(
                    f"{self.path}: holds {len(names)} sweeps ({', '.join(names)}); "
                    f"choose one with {what} NAME"
                )
            return [s["id"] for s in sweeps]
        ids = [s["id"] for s in sweeps if s["name"] == name]
        if not ids:
            raise SparsescaleError(
                f"{what} {name}: no such sweep in {self.path} (it holds: "
                f"{', '.join(names) or 'none'})"
            )
        return ids

    # -- attempts (where each dispatch of a run ran and how it ended) ------------------
    def record_attempt(
        self,
        config_hash: str,
        outcome: str,
        attempt: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        a = attempt or {}
        resumed = None if a.get("resumed") is None else int(bool(a["resumed"]))
        with self.transaction() as c:
            c.execute(
                "INSERT INTO attempt_log VALUES (?,?,?,?,?,?)",
                (
                    config_hash,
                    outcome,
                    a.get("node"),
                    resumed,
                    (reason or "")[:4000] or None,
                    time.time(),
                ),
            )

    def attempt_log(self, config_hash: str | None = None) -> list[dict[str, Any]]:
        """Every recorded attempt, oldest first ([] for a store older than the log)."""
        sql, args = "SELECT * FROM attempt_log", ()
        if config_hash is not None:
            sql, args = sql + " WHERE config_hash = ?", (config_hash,)
        try:
            return [dict(r) for r in self.conn.execute(sql + " ORDER BY rowid", args)]
        except sqlite3.OperationalError:
            return []
