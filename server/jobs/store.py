"""The SQLite job store: jobs, their ordered event logs, measured stage rates, dataset claims.

A job that works on a dataset holds a claim on it from the moment it is queued until it ends.
A request takes the claim (``reserved``) before it checks the dataset, under the id its job
will have, so the checks and the submit see the same dataset: of two requests racing for one
dataset exactly one wins, and a deletion cannot slip between a check and the job it allows.

One aiosqlite connection in WAL mode. The schema is versioned: each entry of ``MIGRATIONS``
runs once, in order, recorded in ``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

MIGRATIONS: list[str] = [
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        dataset TEXT,
        slot TEXT NOT NULL,
        argv TEXT NOT NULL,
        params TEXT NOT NULL,
        progress TEXT NOT NULL DEFAULT '{}',
        stats TEXT NOT NULL DEFAULT '{}',
        result TEXT,
        error TEXT,
        pid INTEGER,
        pgid INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL
    );
    CREATE INDEX jobs_status ON jobs(status, created_at);
    CREATE INDEX jobs_dataset ON jobs(dataset, created_at);
    CREATE TABLE events (
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        data TEXT NOT NULL,
        ts REAL NOT NULL,
        PRIMARY KEY (job_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE rates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        items REAL NOT NULL,
        seconds REAL NOT NULL,
        measured_at REAL NOT NULL
    );
    CREATE INDEX rates_kind ON rates(kind, measured_at);
    """,
    # What a stopped job adds to its arguments to continue (JSON list); NULL: not resumable.
    """
    ALTER TABLE jobs ADD COLUMN resume_args TEXT;
    UPDATE jobs SET resume_args = '[]' WHERE kind IN ('render', 'batch_render');
    UPDATE jobs SET resume_args = '["--resume"]' WHERE kind IN ('training', 'training_test');
    """,
    # Which job (or deletion) holds each dataset now; the primary key makes claiming atomic.
    """
    CREATE TABLE claims (
        dataset TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        claimed_at REAL NOT NULL
    );
    INSERT OR IGNORE INTO claims (dataset, holder, claimed_at)
        SELECT dataset, id, created_at FROM jobs
        WHERE dataset IS NOT NULL AND status IN ('queued', 'running');
    """,
]

TERMINAL = ("completed", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
DELETION_PREFIX = "delete:"  # the holder of a dataset being deleted: "delete:<token>"


class DatasetBusy(Exception):
    """The dataset is held by another job (or a deletion) right now."""

    def __init__(self, dataset: str, holder: str) -> None:
        super().__init__(f"dataset {dataset!r} is in use by {holder}")
        self.dataset = dataset
        self.holder = holder


@dataclass
class Job:
    """One row of ``jobs`` with its JSON columns decoded."""

    id: str
    kind: str
    status: str
    dataset: str | None
    slot: str
    argv: list[str]
    params: dict[str, Any]
    progress: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    pid: int | None = None
    pgid: int | None = None
    attempts: int = 0
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    resume_args: list[str] | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


_JSON_COLUMNS = {"argv", "params", "progress", "stats", "result", "resume_args"}


def _row_to_job(row: aiosqlite.Row) -> Job:
    values = {k: row[k] for k in row.keys()}  # noqa: SIM118 (sqlite Row has no items())
    for key in _JSON_COLUMNS:
        if values[key] is not None:
            values[key] = json.loads(values[key])
    return Job(**values)


class JobStore:
    """Async access to the store. Create with ``await JobStore.open(path)``."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: Path) -> JobStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db)
        await store._migrate()
        return store

    async def close(self) -> None:
        await self.db.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Statements that commit together or not at all: a write refused half-way (a full
        disk) is rolled back, so the connection is usable for the retry."""
        try:
            yield self.db
            await self.db.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.db.rollback()
            raise

    async def _migrate(self) -> None:
        async with self.db.execute("PRAGMA user_version") as cur:
            (version,) = await cur.fetchone()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await self.db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")

    # -- jobs ----
    async def create_job(self, job: Job) -> None:
        """Insert the job and, when it names a dataset, claim it (DatasetBusy if held)."""
        async with self._transaction() as db:
            if job.dataset is not None:
                await self._claim(db, job.dataset, job.id)
            await db.execute(
                "INSERT INTO jobs"
                " (id, kind, status, dataset, slot, argv, params, created_at, resume_args)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.kind,
                    job.status,
                    job.dataset,
                    job.slot,
                    json.dumps(job.argv),
                    json.dumps(job.params),
                    job.created_at,
                    None if job.resume_args is None else json.dumps(job.resume_args),
                ),
            )

    async def claim(self, dataset: str, holder: str) -> None:
        """Hold ``dataset`` for ``holder`` (a job id, or a deletion); DatasetBusy if held."""
        async with self._transaction() as db:
            await self._claim(db, dataset, holder)

    @contextlib.asynccontextmanager
    async def reserved(self, dataset: str, holder: str) -> AsyncIterator[None]:
        """Hold ``dataset`` for the job ``holder`` a request is about to submit; let go when
        the request fails or submits nothing (a submitted job keeps the claim until it ends)."""
        await self.claim(dataset, holder)
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                await self.release(dataset, holder)
            raise
        if await self.get_job(holder) is None:
            await self.release(dataset, holder)

    async def drop_orphan_claims(self) -> None:
        """At start-up: claims of no queued or running job (a deletion or a request the
        previous server was serving when it died) hold nothing any more."""
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM claims WHERE holder NOT IN"
                " (SELECT id FROM jobs WHERE status IN ('queued', 'running'))"
            )

    async def release(self, dataset: str, holder: str) -> None:
        """Let go of ``dataset`` if ``holder`` holds it (a no-op otherwise)."""
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM claims WHERE dataset = ? AND holder = ?", (dataset, holder)
            )

    async def requeue(self, job: Job, **fields: Any) -> None:
        """Queue a stopped job again: its dataset is claimed in the same step."""
        async with self._transaction() as db:
            if job.dataset is not None:
                await self._claim(db, job.dataset, job.id)
            await self._update(db, job.id, {"status": "queued", **fields})

    async def holder(self, dataset: str) -> str | None:
        async with self.db.execute(
            "SELECT holder FROM claims WHERE dataset = ?", (dataset,)
        ) as cur:
            row = await cur.fetchone()
        return row["holder"] if row else None

    async def _claim(self, db: aiosqlite.Connection, dataset: str, holder: str) -> None:
        # A claim whose job has ended is stale (its release was lost, say to a full disk);
        # a holder with no job row yet is a request between its checks and its submit.
        await db.execute(
            "DELETE FROM claims WHERE dataset = ? AND holder IN"
            " (SELECT id FROM jobs WHERE status NOT IN ('queued', 'running'))",
            (dataset,),
        )
        try:
            await db.execute(
                "INSERT INTO claims (dataset, holder, claimed_at) VALUES (?, ?, ?)",
                (dataset, holder, time.time()),
            )
        except sqlite3.IntegrityError:
            async with db.execute("SELECT holder FROM claims WHERE dataset = ?", (dataset,)) as cur:
                row = await cur.fetchone()
            current = row["holder"] if row else "another job"
            if current != holder:
                raise DatasetBusy(dataset, current) from None

    async def get_job(self, job_id: str) -> Job | None:
        async with self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return _row_to_job(row) if row else None

    async def update_job(self, job_id: str, **fields: Any) -> None:
        if not fields:
            return
        async with self._transaction() as db:
            await self._update(db, job_id, fields)

    @staticmethod
    async def _update(db: aiosqlite.Connection, job_id: str, fields: dict[str, Any]) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        values = [
            json.dumps(v) if k in _JSON_COLUMNS and v is not None else v for k, v in fields.items()
        ]
        await db.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*values, job_id))

    async def list_jobs(
        self,
        *,
        statuses: Iterable[str] = (),
        kind: str | None = None,
        dataset: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        where, args = [], []
        statuses = list(statuses)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if dataset:
            where.append("dataset = ?")
            args.append(dataset)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        async with self.db.execute(f"SELECT COUNT(*) FROM jobs {clause}", args) as cur:
            (total,) = await cur.fetchone()
        query = f"SELECT * FROM jobs {clause} ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
        async with self.db.execute(query, (*args, limit, offset)) as cur:
            rows = await cur.fetchall()
        return [_row_to_job(r) for r in rows], total

    async def jobs_with_status(self, *statuses: str) -> list[Job]:
        marks = ", ".join("?" * len(statuses))
        query = f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created_at, id"
        async with self.db.execute(query, statuses) as cur:
            rows = await cur.fetchall()
        return [_row_to_job(r) for r in rows]

    # -- events ----
    async def last_seq(self, job_id: str) -> int:
        async with self.db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?", (job_id,)
        ) as cur:
            (seq,) = await cur.fetchone()
        return int(seq)

    async def append_events(self, rows: list[tuple[str, int, str, dict[str, Any], float]]) -> None:
        """Insert (job_id, seq, event, data, ts) rows in one transaction."""
        if not rows:
            return
        async with self._transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO events (job_id, seq, event, data, ts)"
                " VALUES (?, ?, ?, ?, ?)",
                [(j, s, e, json.dumps(d), t) for j, s, e, d, t in rows],
            )

    async def events_after(
        self, job_id: str, after: int = 0, event: str | None = None, limit: int = 10_000
    ) -> list[tuple[int, str, dict[str, Any], float]]:
        query = "SELECT seq, event, data, ts FROM events WHERE job_id = ? AND seq > ?"
        args: list[Any] = [job_id, after]
        if event:
            query += " AND event = ?"
            args.append(event)
        query += " ORDER BY seq LIMIT ?"
        args.append(limit)
        async with self.db.execute(query, args) as cur:
            rows = await cur.fetchall()
        return [(r["seq"], r["event"], json.loads(r["data"]), r["ts"]) for r in rows]

    # -- measured rates ----
    async def record_rate(self, kind: str, items: float, seconds: float) -> None:
        if items <= 0 or seconds <= 0:
            return
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO rates (kind, items, seconds, measured_at) VALUES (?, ?, ?, ?)",
                (kind, items, seconds, time.time()),
            )

    async def rate(self, kind: str, recent: int = 5) -> float | None:
        """Items per second over the most recent measured jobs of ``kind`` (None if none)."""
        async with self.db.execute(
            "SELECT SUM(items), SUM(seconds) FROM "
            "(SELECT items, seconds FROM rates WHERE kind = ? ORDER BY measured_at DESC LIMIT ?)",
            (kind, recent),
        ) as cur:
            items, seconds = await cur.fetchone()
        if not items or not seconds:
            return None
        return float(items) / float(seconds)
