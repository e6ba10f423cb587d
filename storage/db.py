"""Engines, the unit of work and the group-commit writer.

Every piece of domain work runs as a *job*: a synchronous function of a `UnitOfWork`, executed
off the event loop. Write jobs go to writer threads that run several queued jobs in one
transaction, each inside its own SAVEPOINT, and commit once (group commit): a job's result is
handed back only after that commit is durable, so nothing the bot confirms can be lost, and a
failing job rolls back alone. Read-only jobs run on a separate small pool.

The hottest messages can also run *set-wise*: a `BatchedJob` names a group function that takes
all such jobs of a batch at once (a handful of statements for all of them instead of a dozen per
message). The group decides before it writes; anything it is not sure of comes back `FALLBACK`
and runs as an ordinary job afterwards, and if the group raises, its savepoint rolls back and
every one of its jobs runs the ordinary way. One sender's jobs keep their order: only a sender's
first job in a batch may join a group.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Callable, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

_log = logging.getLogger("microwish.db")
T = TypeVar("T")
MAX_BATCH = 64
CLOSE_GRACE = 0.02  # `close` waits until no job has been queued or finished for this long...
CLOSE_SECONDS = 10.0  # ...but no longer than this
FALLBACK: Any = type("Fallback", (), {"__repr__": lambda self: "FALLBACK"})()  # "run me as an ordinary job"


def _wal(cur: Any) -> None:
    """PRAGMA journal_mode=WAL, retried: while another connection runs the WAL recovery of a file
    just opened (or a writer holds it), SQLite answers "database is locked" at once, without its
    busy handler (seen when two Databases open one copied file together)."""
    import sqlite3

    for attempt in range(100):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.02)


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """SQLite with WAL, synchronous=NORMAL, a busy timeout and foreign keys; PostgreSQL with a pool."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if not url.endswith(":memory:") and url != "sqlite://":
                _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # pysqlite's own transaction handling breaks SAVEPOINT; we issue BEGIN ourselves.
            # Writers take the write lock up front so two processes never deadlock on upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_write") else "BEGIN")

        return engine
    # Our statements are never prepared on the server (psycopg would after five runs): PostgreSQL
    # then plans each with its parameters and the table's current size. A generic plan made while
    # a table was empty (a new database, or one autovacuum has not analyzed yet) kept a
    # sequential scan as it grew: the 许愿 batch's `= ANY(...)` reads scanned the whole wish table,
    # about 0.5 ms of PostgreSQL CPU per message at 10k wishes and growing. Not the session-wide
    # plan_cache_mode=force_custom_plan: that also re-plans every foreign-key check's cached
    # query, one per inserted row (a third of PostgreSQL's CPU under 许愿 load).
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800,
                           connect_args={"prepare_threshold": None} if url.startswith("postgresql") else {})
    _ping_when_idle(engine)
    return engine


PING_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """pool_pre_ping, but only for a connection that sat in the pool for a while.

    A connection back within a second was just working; pinging it anyway was a round trip per
    write batch (and for the writer one more wait for the GIL). One that sat idle is tested with
    `SELECT 1`; if the server is gone, DisconnectionError makes the pool drop it and connect anew
    (SQLAlchemy's documented custom pessimistic handling).
    """
    from sqlalchemy import exc

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in", float("-inf")) < PING_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)  # the dialect's pre-ping (psycopg: in autocommit, no transaction left open)
        except Exception as e:
            raise exc.DisconnectionError(f"idle connection failed its ping ({type(e).__name__})") from e


class UnitOfWork:
    """One transaction's worth of work: a session, `now`, and the repositories over it."""

    def __init__(self, session: Session, now: datetime) -> None:
        from storage import repositories as r

        self.session = session
        self.now = now
        self._after_commit: list[Callable[[], None]] = []
        self.people = r.PersonRepository(session)
        self.wishes = r.WishRepository(session)
        self.claims = r.ClaimRepository(session)
        self.outbox = r.OutboxRepository(session)
        self.inbound = r.InboundRepository(session)
        self.dialogues = r.DialogueRepository(session)
        self.org = r.OrgRepository(session)
        self.sweeps = r.SweepRepository(session)

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` (on the event loop) once this job's transaction is committed."""
        self._after_commit.append(fn)

    def flush(self) -> None:
        self.session.flush()


Job = Callable[[UnitOfWork], T]
Group = Callable[[UnitOfWork, list[Any], list[datetime]], list[Any]]


class BatchedJob:
    """A write job that keeps its sender's order and may run set-wise with others of its `group`.

    `run(uow)` is the ordinary path. `group(uow, items, nows)` handles many items in one
    savepoint and returns, per item, its result or `FALLBACK`.
    """

    __slots__ = ("run", "group", "item", "order_key")

    def __init__(self, run: Callable[[UnitOfWork], Any], *, order_key: str | None = None,
                 group: Group | None = None, item: Any = None) -> None:
        self.run, self.group, self.item, self.order_key = run, group, item, order_key

    def __call__(self, uow: UnitOfWork) -> Any:
        return self.run(uow)


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """Hand a result back to the caller's loop; a loop already closed has nobody waiting."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass


class DatabaseClosed(RuntimeError):
    pass


class _Pending:
    __slots__ = ("fn", "now", "future", "loop")

    def __init__(self, fn: Callable[[UnitOfWork], Any], now: datetime, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.fn, self.now, self.future, self.loop = fn, now, future, loop


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


def _settle(done: list[tuple[_Pending, tuple[bool, Any, list[Callable[[], None]]]]]) -> None:
    """On the caller's loop: resolve each job's future, then run its after-commit callbacks."""
    for job, (ok, value, callbacks) in done:
        _resolve(job.future, ok, value)
        for cb in callbacks:
            try:
                cb()
            except Exception:
                _log.exception("db.after_commit_failed")


class Database:
    """The engine plus the threads that run jobs. Create once per process; `close()` at exit."""

    def __init__(self, url: str, *, writers: int | None = None, pool_size: int | None = None, batching: bool = True) -> None:
        self.url = url
        self.batching = batching  # False: every job the ordinary way (tests compare the two)
        self.grouped = 0  # jobs answered set-wise so far (the rest ran the ordinary way)
        self.batches = self.jobs = 0  # committed write transactions and the jobs in them (/metrics)
        self.is_sqlite = url.startswith("sqlite")
        # PostgreSQL: two writers (a long job leaves a lane free; four split the batches so finely
        # that a second process cost more CPU per message than it added: 0.84x one, against 1.13x)
        n_writers = writers or (1 if self.is_sqlite else 2)
        self.engine = make_engine(url, pool_size=pool_size or (n_writers + 4))
        self._write_bind = self.engine.execution_options(sqlite_write=True) if self.is_sqlite else self.engine
        # A SimpleQueue (C): queue.Queue's put took ~5 µs of the event loop's time per message in its
        # Python-level Condition; `close` counts queued and finished jobs itself instead.
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._queued = self._finished = 0
        self._writers = [threading.Thread(target=self._writer_loop, name=f"db-writer-{i}", daemon=True) for i in range(n_writers)]
        for t in self._writers:
            t.start()
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="db-reader")
        self._gate = threading.Lock()  # no job is queued behind the writers' stop signals
        self._closing = self._closed = False
        self._last_done = float("-inf")  # monotonic time the last batch was handed back

    # -- public API -----------------------------------------------------------------------

    async def write(self, fn: Callable[[UnitOfWork], T], *, now: datetime) -> T:
        """Run `fn` in a write transaction (group-committed); return once it is durable."""
        return await self.submit(fn, now=now)

    def submit(self, fn: Callable[[UnitOfWork], T], *, now: datetime) -> "asyncio.Future[T]":
        """`write` without a coroutine: the future resolves once the job's batch is durable.

        For the callback path, which waits on it with a deadline (no task, no shield needed:
        a caller that stops waiting leaves the job to finish).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        with self._gate:
            if self._closed:
                raise DatabaseClosed("the database is closed")
            self._queued += 1
            self._queue.put(_Pending(fn, now, fut, loop))
        return fut

    async def read(self, fn: Callable[[UnitOfWork], T], *, now: datetime) -> T:
        """Run `fn` in a read-only transaction on the reader pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.run_sync, fn, now, False)

    async def read_connection(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` on a bare pooled connection on the reader pool: for the lean read-only paths (no session)."""
        def run() -> T:
            with self.engine.connect() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    def run_sync(self, fn: Callable[[UnitOfWork], T], now: datetime, write: bool = True) -> T:
        """Run one job in its own transaction on the calling thread (CLI, scheduler, tests)."""
        with self._session(write) as session:
            uow = UnitOfWork(session, now)
            try:
                result = fn(uow)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            for cb in uow._after_commit:
                cb()
            return result

    def ping(self, timeout: float = 1.0) -> bool:
        """True when a write could start now: on SQLite the write lock is free within `timeout`."""
        try:
            if self.is_sqlite:
                raw = self.engine.raw_connection()
                try:
                    cur = raw.cursor()
                    cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
                    try:
                        cur.execute("BEGIN IMMEDIATE")  # a long writer elsewhere holds it: unavailable
                        cur.execute("ROLLBACK")
                    finally:
                        cur.execute("PRAGMA busy_timeout=30000")
                        cur.close()
                finally:
                    raw.close()
                return True
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Stop the threads and dispose of the engine, once the write queue has gone quiet.

        Until then jobs are still accepted and run: a job finishing during shutdown may hand on
        work from its callbacks (a late reply goes to the outbox), and that is not refused. Only
        after `CLOSE_GRACE` without a job queued or finished (at most `CLOSE_SECONDS`) does
        `submit` raise `DatabaseClosed`.
        """
        if self._closing:
            return
        self._closing = True
        deadline = time.monotonic() + CLOSE_SECONDS
        while time.monotonic() < deadline and (
                self._queued > self._finished or time.monotonic() - self._last_done < CLOSE_GRACE):
            time.sleep(CLOSE_GRACE / 4)
        with self._gate:
            self._closed = True
            for _ in self._writers:
                self._queue.put(None)
        for t in self._writers:
            t.join(timeout=10)
        self._readers.shutdown(wait=True)
        self.engine.dispose()

    # -- internals ------------------------------------------------------------------------

    def _session(self, write: bool) -> Session:
        bind = self._write_bind if write else self.engine
        return Session(bind=bind, expire_on_commit=False, autoflush=True)

    def _writer_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # let this thread finish the batch, then stop
                    break
                batch.append(nxt)
            try:
                self._run_batch(batch)
            finally:
                self._last_done = time.monotonic()  # before the count: `close` reads them in that order
                with self._gate:
                    self._finished += len(batch)

    def _grouped(self, batch: list[_Pending]) -> dict[Group, list[int]]:
        """Positions of the jobs that may run set-wise, by group: a sender's first job only."""
        groups: dict[Group, list[int]] = {}
        if not self.batching:
            return groups
        seen: set[str] = set()
        for i, job in enumerate(batch):
            fn = job.fn
            if not isinstance(fn, BatchedJob):
                continue
            if fn.group is not None and fn.order_key not in seen and not job.future.done():
                groups.setdefault(fn.group, []).append(i)
            if fn.order_key is not None:
                seen.add(fn.order_key)
        return groups

    def _run_group(self, session: Session, group: Group, jobs: list[_Pending], *,
                   first: bool) -> tuple[list[Any], list[Callable[[], None]]]:
        """`first`: nothing else is in the transaction yet, so a failure rolls all of it back and
        starts it anew instead of costing every batch a SAVEPOINT and its RELEASE (two more round
        trips, and two more waits for the GIL, per batch)."""
        uow = UnitOfWork(session, jobs[0].now)
        try:
            if first:
                results = group(uow, [j.fn.item for j in jobs], [j.now for j in jobs])
            else:
                with session.begin_nested():
                    results = group(uow, [j.fn.item for j in jobs], [j.now for j in jobs])
            if len(results) != len(jobs):
                raise RuntimeError(f"group returned {len(results)} results for {len(jobs)} jobs")
            return results, uow._after_commit
        except Exception as exc:  # the ordinary path is always there: nothing is lost, only the speed
            if first:
                session.rollback()
                session.begin()
            # Type and place only: a driver's message may quote parameters (residents' words).
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            _log.error("db.group_failed %s at %s; its jobs run one by one", type(exc).__name__, where)
            return [FALLBACK] * len(jobs), []

    def _run_batch(self, batch: list[_Pending]) -> None:
        outcomes: list[tuple[bool, Any, list[Callable[[], None]]] | None] = [None] * len(batch)
        grouped = 0
        try:
            with self._session(True) as session:
                session.begin()
                for n, (group, positions) in enumerate(self._grouped(batch).items()):
                    results, callbacks = self._run_group(session, group, [batch[i] for i in positions], first=n == 0)
                    for i, value in zip(positions, results):
                        if value is not FALLBACK:
                            outcomes[i] = (True, value, callbacks)
                            callbacks = []  # the group's after-commit work runs once
                            grouped += 1
                for i, job in enumerate(batch):
                    if outcomes[i] is not None:
                        continue
                    if job.future.done():  # cancelled by its caller before it ran
                        outcomes[i] = (False, asyncio.CancelledError(), [])
                        continue
                    uow = UnitOfWork(session, job.now)
                    try:
                        with session.begin_nested():
                            value = job.fn(uow)
                        outcomes[i] = (True, value, uow._after_commit)
                    except Exception as exc:  # the job's own refusal or failure: only it rolls back
                        outcomes[i] = (False, exc, [])
                session.commit()
            self.grouped += grouped
            self.batches += 1
            self.jobs += len(batch)
        except Exception as exc:  # the commit itself failed: nothing in the batch was confirmed
            for job in batch:
                _post(job.loop, _resolve, job.future, False, exc)
            return
        # One wake-up per event loop for the whole batch (a call_soon_threadsafe per job is a
        # write to the loop's self-pipe each).
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, tuple[bool, Any, list[Callable[[], None]]]]]] = {}
        for job, outcome in zip(batch, outcomes):
            by_loop.setdefault(job.loop, []).append((job, outcome))  # type: ignore[arg-type]
        for loop, done in by_loop.items():
            _post(loop, _settle, done)
