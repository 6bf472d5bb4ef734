"""Per-request cost of otel-audit vs contrib tracing and django-auditlog, per framework, in-process.

    python benchmarks/frameworks.py [--requests 3000] [--repeat 3] [--rounds 1] [--profile flask:adapters:hello]
    python benchmarks/frameworks.py --instructions [--endpoints hello,crud,crud_pg] [--counts 100,300]

For Flask, FastAPI (called as an ASGI app directly) and Django (its WSGI handler, with session and
authentication middleware), a hello-world endpoint and two CRUD endpoints (insert, update, delete
one row: sqlite3 cursors for Flask, the SQLAlchemy ORM for FastAPI, the Django ORM for Django, as
the logged-in user) are run in each mode, each in a fresh subprocess so instrumentation never
leaks between modes. ``crud`` runs on SQLite with fsync off: a database that costs almost nothing,
so it shows the CPU cost per statement. ``crud_pg`` runs the same code on the local PostgreSQL
(psycopg 3 over TCP, commits durable as PostgreSQL makes them by default), in a schema of its own:
what a production CRUD request looks like. It is skipped, and said so, when no PostgreSQL answers
at OTEL_AUDIT_TEST_PG_DSN (``.ci/start-postgres.sh`` starts one).

* ``bare``     - no instrumentation
* ``audit``    - otel-audit's framework adapter plus its DB adapters, the runtime with its policy,
                 redaction and durable local sink (records written before the request returns)
* ``adapters`` - exactly like ``audit`` (same adapters, runtime started with its policy), but the
                 adapters' entry points into the runtime (``record_event``, ``admit_request``) are
                 replaced by a stand-in that keeps the event and returns: the adapters' own cost
                 (wrapping, request scope, actor, capture, SQL classification, event construction)
                 without the pipeline, redaction and spool
* ``tracing``  - contrib's tracing instrumentation of the framework and of its database layer
                 (sqlite3 + psycopg for Flask and Django, SQLAlchemy for FastAPI), so both sides do
                 per-statement work; spans batched to an exporter that counts and drops them
* ``peer``     - Django only: django-auditlog registered on the benchmark model, its middleware
                 for the actor, on the same view (its ``LogEntry`` rows in the default database)

Workers run under ``pack:all-requests`` (the default policy without its quiet rules), so the
hello-world GET makes its record too. Every mode reports what it made per request, all of it delivered before the count: otel-audit's
records in the sink (``records``; CRUD must be 1), the tracer's spans (``spans``), django-auditlog's
rows (``rows``). The targets compare added costs in the same run: ``audit/trace`` (otel-audit's added
÷ tracing's added) and, on Django, ``audit/peer``.

N requests go straight through the WSGI/ASGI callable (no network, nothing subtracted); the best
of ``--repeat`` runs is reported as µs/request. ``adapters +`` is the adapters' share of
``audit +``; ``events/req`` is how many events the adapters handed to the runtime per request,
and ``adapters µs/event`` their added µs on CRUD beyond hello-world, per extra event.
``--instructions`` counts instructions per request instead of timing (valgrind's callgrind, all
threads of the worker: otel-audit's spool writer and exporter, the tracer's batch span processor;
every record and span is exported before the count ends). Each worker runs at two request counts
and the difference is divided out, so start-up, warm-up and shutdown cancel. On a shared machine
whose timings swing by ±30 % this ratio does not move between runs; it is a proxy for time, not
time itself (a system call or a cache miss counts as little).
Targets (issues #16 and #22): CRUD 1 record per request; audit's added at most 1.0x tracing's added
on CRUD (0.5x by #22) and, on Django, 0.35x django-auditlog's (0.25x by #22); hello-world 0.25x
tracing's; adapters at most 10 µs per hello-world request and 4 µs per statement or ORM change.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("flask", "fastapi", "django")
MODES = ("bare", "audit", "adapters", "tracing", "peer")
#: ``peer`` is another audit library on the same view: django-auditlog, so Django only.
PEER_FRAMEWORKS = ("django",)


def modes_for(framework: str, wanted: tuple[str, ...] = MODES) -> tuple[str, ...]:
    return tuple(m for m in wanted if m != "peer" or framework in PEER_FRAMEWORKS)
#: The CRUD endpoints measure CPU cost, not this machine's fsync latency (which would dwarf both).
NO_FSYNC = "PRAGMA synchronous = OFF"
ENDPOINTS = {"hello": ("GET", "/hello"), "crud": ("POST", "/crud"), "crud_pg": ("POST", "/crud-pg")}
PG_DSN = os.environ.get("OTEL_AUDIT_TEST_PG_DSN", "postgresql://otel_audit:otel_audit@127.0.0.1:5432/otel_audit")
#: The worker's own tables, apart from the tests' and from every other worker's: two workers run at
#: once (callgrind's low and high counts), and Django's migrations racing in one schema fail.
PG_SCHEMA = f"otel_audit_bench_{os.getpid()}"


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
        atexit.register(_drop_pg_schema)
        return True
    except Exception:  # noqa: BLE001 - no driver, no server: the endpoint is skipped
        return False


def _drop_pg_schema() -> None:
    """The worker's schema goes when it does (Django keeps a persistent connection: closed first)."""
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: BLE001 - not a Django worker
        pass
    try:
        import psycopg

        # ``Connection.connect``, not the audited ``psycopg.connect``: the runtime has stopped by now
        with psycopg.Connection.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '5s'")  # a connection of this worker still open: give up
            conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
    except Exception:  # noqa: BLE001 - best effort: a leftover schema is harmless
        pass


def _pg_connect() -> Any:
    import psycopg

    conn = psycopg.connect(PG_DSN, options=f"-c search_path={PG_SCHEMA}")
    conn.execute("CREATE TABLE IF NOT EXISTS note (id SERIAL PRIMARY KEY, title TEXT)")
    conn.commit()
    return conn


# ---------------------------------------------------------------------------------------------
# Worker side: one framework in one mode


def _tracer_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            _SPANS[0] += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    _TRACER_PROVIDERS.append(provider)
    return provider


#: Tracer providers made by ``tracing`` mode, flushed before an instruction count ends.
_TRACER_PROVIDERS: list[Any] = []
#: Spans the ``tracing`` mode's exporter received (counted, then dropped).
_SPANS: list[int] = [0]


def _instrument_tracing(*instrumentors: Any) -> None:
    """Contrib's framework instrumentation and its database instrumentations on the one dropping
    provider. The dependency check is skipped as for otel-audit's adapters: contrib's SQLAlchemy
    instrumentation declares ``< 2.1`` and would otherwise trace nothing on SQLAlchemy 2.1."""
    provider = _tracer_provider()
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)


def records_so_far(mode: str) -> int:
    """What each mode has made for the user so far, all of it delivered: otel-audit's records in the
    sink (after a flush), the tracer's exported spans, django-auditlog's ``LogEntry`` rows; the
    ``adapters`` mode's stand-in makes none (its events are ``events/req``)."""
    if mode == "audit":
        from otel_audit import runtime

        runtime.flush(120_000)
        sink = Path(os.environ["OTEL_AUDIT_SINK_PATH"])
        with sink.open("rb") as lines:
            return sum(1 for _ in lines)
    if mode == "tracing":
        _flush_all()
        return _SPANS[0]
    if mode == "peer":
        from auditlog.models import LogEntry

        return LogEntry.objects.count()
    return 0


def _start_audit(workdir: Path) -> None:
    os.environ["OTEL_AUDIT_SINK_PATH"] = str(workdir / "audit.jsonl")
    os.environ["OTEL_AUDIT_QUIET"] = "1"
    from otel_audit import runtime

    runtime.start()


#: Events the ``adapters`` mode's stand-in received (bounded: only the count matters).
_HANDED: list[int] = [0]


def _instrument_audit(mode: str, *instrumentors: Any) -> None:
    for instrumentor in instrumentors:
        instrumentor.instrument(skip_dep_check=True)
    if mode == "adapters":
        _stub_runtime_entry_points()


def _stub_runtime_entry_points() -> None:
    """Replace ``record_event`` / ``admit_request`` wherever otel-audit's modules bound them (the
    adapters import them by name), so only the adapters' own work is timed."""
    from collections import deque

    from otel_audit import runtime

    from otel_audit.pipeline import Decision

    kept: deque[Any] = deque(maxlen=1)  # the last one only: the real pipeline drops an event once emitted
    # Decided as the real pipeline would decide hello-world's and CRUD's records: an event left
    # undecided looks refused to ``close_request``, which then spools the resolve frame of the
    # request's intent (work the audit mode never does, counted here as the adapters').
    recorded = Decision(level="metadata", rule="benchmark-stand-in")

    def record_event(event: Any) -> bool:
        event.decision = recorded
        kept.append(event)
        _HANDED[0] += 1
        return True

    def admit_request() -> None:
        return None

    originals = {"record_event": runtime.record_event, "admit_request": runtime.admit_request}
    stand_ins = {"record_event": record_event, "admit_request": admit_request}
    replaced = 0
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "otel_audit" or name.startswith("otel_audit.")):
            continue
        for attr, original in originals.items():
            if getattr(module, attr, None) is original:
                setattr(module, attr, stand_ins[attr])
                replaced += 1
    assert replaced >= 2, "adapters mode: found no runtime entry point to replace"


def _wsgi_caller(app: Callable[..., Any]) -> Callable[..., int]:
    from wsgiref.util import setup_testing_defaults

    def call(method: str, path: str, extra: dict[str, str] | None = None) -> int:
        environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(b""),
                                   "CONTENT_LENGTH": "0", "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost",
                                   **(extra or {})}
        setup_testing_defaults(environ)
        status: list[str] = []
        body = app(environ, lambda s, h, exc_info=None: status.append(s))
        try:
            for _ in body:
                pass
        finally:
            getattr(body, "close", lambda: None)()
        return int(status[0].split()[0])

    return call


def flask_app(mode: str, workdir: Path) -> Callable[[str, str], int]:
    if mode in ("audit", "adapters"):
        from otel_audit.instrumentation.dbapi import PsycopgAuditInstrumentor, Sqlite3AuditInstrumentor
        from otel_audit.instrumentation.flask import FlaskAuditInstrumentor

        _start_audit(workdir)
        _instrument_audit(mode, FlaskAuditInstrumentor(), Sqlite3AuditInstrumentor(), PsycopgAuditInstrumentor())
    elif mode == "tracing":
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        _instrument_tracing(FlaskInstrumentor(), SQLite3Instrumentor(), PsycopgInstrumentor())
    import sqlite3

    import flask

    conn = sqlite3.connect(workdir / "flask.db", check_same_thread=False)
    conn.execute(NO_FSYNC)
    conn.execute("CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, title TEXT)")
    app = flask.Flask("bench")

    @app.get("/hello")
    def hello() -> str:
        return "hello"

    @app.post("/crud")
    def crud() -> Any:
        # A cursor, not ``conn.execute``: contrib's sqlite3 instrumentation traces cursors only.
        cur = conn.cursor()
        cur.execute("INSERT INTO note (title) VALUES (?)", ("draft",))
        note_id = cur.lastrowid
        cur.execute("UPDATE note SET title = ? WHERE id = ?", ("final", note_id))
        cur.execute("DELETE FROM note WHERE id = ?", (note_id,))
        conn.commit()
        return {"id": note_id}

    pg = _pg_connect() if PG else None

    @app.post("/crud-pg")
    def crud_pg() -> Any:
        note_id = pg.execute("INSERT INTO note (title) VALUES (%s) RETURNING id", ("draft",)).fetchone()[0]
        pg.execute("UPDATE note SET title = %s WHERE id = %s", ("final", note_id))
        pg.execute("DELETE FROM note WHERE id = %s", (note_id,))
        pg.commit()
        return {"id": note_id}

    return _wsgi_caller(app)


def fastapi_app(mode: str, workdir: Path) -> Callable[[str, str], int]:
    if mode in ("audit", "adapters"):
        from otel_audit.instrumentation.starlette import StarletteAuditInstrumentor
        from otel_audit.instrumentation.dbapi import PsycopgAuditInstrumentor, Sqlite3AuditInstrumentor
        from otel_audit.instrumentation.sqlalchemy import SQLAlchemyAuditInstrumentor

        _start_audit(workdir)
        _instrument_audit(mode, StarletteAuditInstrumentor(), SQLAlchemyAuditInstrumentor(),
                          Sqlite3AuditInstrumentor(), PsycopgAuditInstrumentor())
    elif mode == "tracing":
        # SQLAlchemy's instrumentation traces every statement the ORM sends; the drivers' own
        # (sqlite3, psycopg) would trace each a second time under it, so they are left out.
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        _instrument_tracing(FastAPIInstrumentor(), SQLAlchemyInstrumentor())
    import fastapi
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from sqlalchemy import event

    engine = create_engine(f"sqlite:///{workdir / 'fastapi.db'}")
    event.listen(engine, "connect", lambda dbapi_connection, record: dbapi_connection.execute(NO_FSYNC))
    SqlBase.metadata.create_all(engine)
    app = fastapi.FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    def crud_on(bound: Any) -> dict[str, int]:
        with Session(bound) as session:
            note = SqlNote(title="draft")
            session.add(note)
            session.commit()
            note.title = "final"
            session.commit()
            session.delete(note)
            session.commit()
            return {"id": note.id}

    @app.post("/crud")
    def crud() -> dict[str, int]:
        return crud_on(engine)

    if PG:
        pg_engine = create_engine(PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1),
                                  connect_args={"options": f"-c search_path={PG_SCHEMA}"})
        SqlBase.metadata.create_all(pg_engine)

        @app.post("/crud-pg")
        def crud_pg() -> dict[str, int]:
            return crud_on(pg_engine)

    loop = asyncio.new_event_loop()

    async def one(method: str, path: str) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
                 "raw_path": path.encode(), "root_path": "", "scheme": "http", "query_string": b"",
                 "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 50000), "server": ("localhost", 80)}
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        return status[0]

    return lambda method, path: loop.run_until_complete(one(method, path))


def django_app(mode: str, workdir: Path) -> Callable[[str, str], int]:
    """Django with session and authentication middleware (as a real app has them: django-auditlog
    needs ``request.user``); the CRUD calls come from a logged-in user, hello-world from nobody."""
    sys.path.insert(0, str(REPO / "examples" / "django_app"))
    from django.conf import settings

    peer = mode == "peer"
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="benchmarks.django_urls",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions", "notes",
                        *(["auditlog"] if peer else [])],
        MIDDLEWARE=["django.middleware.security.SecurityMiddleware",
                    "django.contrib.sessions.middleware.SessionMiddleware",
                    "django.middleware.common.CommonMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware",
                    *(["auditlog.middleware.AuditlogMiddleware"] if peer else [])],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(workdir / "django.sqlite3"),
                                 "OPTIONS": {"init_command": NO_FSYNC}},
                   **({"pg": _django_pg_settings()} if PG else {})},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
    )
    if mode in ("audit", "adapters"):
        from otel_audit.instrumentation.dbapi import PsycopgAuditInstrumentor, Sqlite3AuditInstrumentor
        from otel_audit.instrumentation.django import DjangoAuditInstrumentor

        _start_audit(workdir)
        _instrument_audit(mode, DjangoAuditInstrumentor(), Sqlite3AuditInstrumentor(), PsycopgAuditInstrumentor())
    elif mode == "tracing":
        # Django's own instrumentation makes no statement spans: the drivers' instrumentations do.
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        _instrument_tracing(DjangoInstrumentor(), SQLite3Instrumentor(), PsycopgInstrumentor())
    import django
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, run_syncdb=True)
    from django.contrib.auth.models import User

    user, _ = User.objects.get_or_create(username="bench")
    if PG:
        call_command("migrate", verbosity=0, run_syncdb=True, database="pg")
        # the session's user, by the same id, owns the notes on PostgreSQL too
        User.objects.using("pg").get_or_create(id=user.pk, defaults={"username": f"bench-{user.pk}"})
    if peer:
        from auditlog.registry import auditlog
        from notes.models import Note

        auditlog.register(Note)
    call = _wsgi_caller(WSGIHandler())
    cookie = {"HTTP_COOKIE": f"sessionid={_django_session(user)}"}
    return lambda method, path: call(method, path, cookie if path != "/hello" else None)


def _django_session(user: Any) -> str:
    """A stored session of ``user`` logged in, as ``django.contrib.auth.login`` leaves it."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def _django_pg_settings() -> dict[str, Any]:
    from urllib.parse import urlsplit

    url = urlsplit(PG_DSN)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"), "USER": url.username,
            "PASSWORD": url.password, "HOST": url.hostname, "PORT": url.port or 5432,
            "CONN_MAX_AGE": 600, "OPTIONS": {"options": f"-c search_path={PG_SCHEMA}"}}  # persistent, as in production


class SqlBase(DeclarativeBase):
    pass


class SqlNote(SqlBase):
    """The FastAPI benchmark's table (module level: the ORM resolves annotations from here)."""

    __tablename__ = "note"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]


APPS = {"flask": flask_app, "fastapi": fastapi_app, "django": django_app}
PG = False  # set in the worker: is PostgreSQL reachable?


def worker(framework: str, mode: str, requests: int, repeat: int, profile: str | None,
           endpoints: list[str]) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{framework}-{mode}-"))
    if (framework, mode) == FLOOR_JOB[:2]:
        return {FLOOR_JOB[2]: floor_worker(workdir, requests, repeat)}
    call = APPS[framework](mode, workdir)
    results: dict[str, float] = {}
    for endpoint in endpoints:
        method, path = ENDPOINTS[endpoint]
        if endpoint == "crud_pg" and not PG:
            continue
        # PostgreSQL CRUD takes milliseconds (durable commits): fewer requests give as steady a figure
        count = max(1, requests if endpoint == "hello" else requests // 3 if endpoint == "crud" else requests // 15)
        for _ in range(min(200, count)):  # warm-up: caches, lazy imports, first connections
            assert call(method, path) < 400
        results[f"{endpoint}_events"], results[f"{endpoint}_records"] = _per_request(mode, call, method, path)
        if profile == endpoint:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(count):
                call(method, path)
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(int(os.environ.get("BENCH_LINES", "35")))
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            for _ in range(count):
                call(method, path)
            best = min(best, (time.perf_counter() - started) / count * 1e6)
        results[endpoint] = best
    return results


def _per_request(mode: str, call: Callable[[str, str], int], method: str, path: str,
                 calls: int = 10) -> tuple[float, float]:
    """Events the adapters handed over and records (spans, rows) delivered, per request."""
    handed, made = _HANDED[0], records_so_far(mode)
    for _ in range(calls):
        call(method, path)
    return (_HANDED[0] - handed) / calls, (records_so_far(mode) - made) / calls


def count_worker(framework: str, mode: str, endpoint: str, requests: int) -> None:
    """``requests`` calls of one endpoint after a warm-up, then every record or span exported: run
    under callgrind at two sizes, the difference is what one request costs, all threads included
    (otel-audit's spool writer and exporter, the tracer's batch processor)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{framework}-{mode}-"))
    os.environ["OTEL_AUDIT_SPOOL_DIR"] = str(workdir / "spool")  # workers run side by side: no shared spool
    if mode == "floor":
        one_record = floor_parts(workdir)
        for _ in range(WARM_UP_CALLS + requests):  # the warm-up cancels in the difference of two counts
            one_record()
        print(json.dumps({"records": 1.0}))
        return
    call = APPS[framework](mode, workdir)
    method, path = ENDPOINTS[endpoint]
    for _ in range(WARM_UP_CALLS):
        assert call(method, path) < 400
    _flush_all()
    made, batches = records_so_far(mode), _count_export_batches(mode)
    for _ in range(requests):
        call(method, path)
    _flush_all()
    print(json.dumps({"records": (records_so_far(mode) - made) / requests, "batches": batches[0]}))


def _count_export_batches(mode: str) -> list[int]:
    """From now on, count the batches otel-audit's exporter thread hands to its exporter (one
    element, read at the end), so the table can show the batch size its figure was counted at."""
    batches = [0]
    if mode != "audit":
        return batches
    from otel_audit import runtime

    sender = runtime.get_runtime().processor._sender  # noqa: SLF001 - the benchmark looks in
    export = sender._export  # noqa: SLF001

    def counted(records: Any) -> bool:
        batches[0] += 1
        return export(records)

    sender._export = counted  # noqa: SLF001
    return batches


WARM_UP_CALLS = 50
#: otel-audit's default ``OTEL_AUDIT_EXPORT_DELAY_MS``.
DEFAULT_EXPORT_DELAY_MS = 50
#: Wall time per request under callgrind ÷ natively, measured on Flask's hello-world with audit
#: (2026-12-03: 21 ms against 427 µs).
CALLGRIND_SLOWDOWN = 50


# ---------------------------------------------------------------------------------------------
# The floor: what one durable audit record physically needs (issue #22)


def floor_parts(workdir: Path) -> Callable[[], None]:
    """One record's irreducible work, on a real record: the attributes of the HTTP record that
    otel-audit's Flask hello-world just wrote (read back from its sink) are copied into a new dict,
    go through the runtime's own redaction pass, one canonical serialisation (orjson, sorted keys),
    one HMAC-SHA256 and one ``write(2)`` on an ``O_APPEND`` file. Everything else a record costs (the
    event, the decision, the chain's bookkeeping, framing, the exporter thread) is above the floor."""
    import hashlib
    import hmac

    import orjson

    from otel_audit import runtime

    call = flask_app("audit", workdir)
    assert call("GET", "/hello") < 400
    runtime.flush(120_000)
    record = json.loads(Path(os.environ["OTEL_AUDIT_SINK_PATH"]).read_text().splitlines()[-1])
    attributes, body = record["attributes"], record["body"]
    redact = runtime.get_runtime()._redactor().redact
    category, level = attributes["audit.category"], attributes["audit.level"]
    key, sha256, sort_keys, write = os.urandom(32), hashlib.sha256, orjson.OPT_SORT_KEYS, os.write
    fd = os.open(workdir / "floor.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def one_record() -> None:
        draft = dict(attributes)
        redacted = redact(draft, body, category=category, level=level)
        payload = orjson.dumps({"attributes": redacted.attributes, "body": redacted.body}, option=sort_keys)
        write(fd, payload + hmac.digest(key, payload, sha256))

    return one_record


def floor_worker(workdir: Path, requests: int, repeat: int = 1) -> float:
    """µs per ``floor_parts`` record, best of ``repeat`` runs of ``requests``."""
    one_record = floor_parts(workdir)
    for _ in range(min(200, requests)):
        one_record()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(requests):
            one_record()
        best = min(best, (time.perf_counter() - started) / requests * 1e6)
    return best


def _flush_all() -> None:
    if "otel_audit.runtime" in sys.modules:
        sys.modules["otel_audit.runtime"].flush(120_000)
    for provider in _TRACER_PROVIDERS:
        provider.force_flush(120_000)


def _instructions(framework: str, mode: str, endpoint: str, requests: int,
                  env: dict[str, str]) -> tuple[int, float]:
    """Instructions (all threads) of a count worker serving ``requests`` calls, from callgrind, and
    the records (spans, rows) it delivered per request."""
    out = Path(tempfile.mkdtemp(prefix="bench-callgrind-")) / "callgrind.out"
    # The interpreter itself, not a wrapper script that would exec it (callgrind would not follow).
    python = os.path.realpath(sys.executable)
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, __file__,
            "--count-worker", framework, mode, endpoint, str(requests)]
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{framework} {mode} {endpoint}: worker failed\n{done.stderr[-2000:]}")
    made = json.loads(done.stdout.strip().splitlines()[-1])
    records = made["records"]
    if made.get("batches"):
        print(f"{framework} {mode} {endpoint} x{requests}: {records * requests / made['batches']:.0f} records "
              f"an export batch (OTEL_AUDIT_EXPORT_DELAY_MS={env.get('OTEL_AUDIT_EXPORT_DELAY_MS')})", file=sys.stderr)
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1]), records
    raise RuntimeError(f"no totals in {out}")


Figures = dict[str, dict[str, dict[str, float]]]  # framework -> mode -> endpoint (and endpoint_records)
#: The floor's figure sits in the table as its own "framework" (worker: ``floor_parts``).
FLOOR_JOB = ("floor", "floor", "record")


def instruction_figures(frameworks: list[str], endpoints: list[str], low: int, high: int,
                        env: dict[str, str], modes: tuple[str, ...] = MODES) -> Figures:
    """Instructions per request, per framework, mode and endpoint: each worker runs under callgrind
    with ``low`` and ``high`` requests; the difference divided by ``high - low`` leaves out start-up,
    warm-up and shutdown. Two workers at a time (callgrind is single-threaded per process)."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(f, m, e) for f in frameworks for m in modes_for(f, modes) for e in endpoints]
    if "hello" in endpoints:
        jobs.append(FLOOR_JOB)
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = {job: (pool.submit(_instructions, *job, low, env), pool.submit(_instructions, *job, high, env))
                  for job in jobs}
        figures: Figures = {}
        for (framework, mode, endpoint), (small, large) in counts.items():
            try:
                (few, _), (many, records) = small.result(), large.result()
                per_request = (many - few) / (high - low)
            except Exception as exc:  # noqa: BLE001 - one failed worker must not cost the others' counts
                print(f"{framework} {mode} {endpoint}: not counted ({str(exc).splitlines()[0]})", file=sys.stderr)
                per_request = records = float("nan")
            figures.setdefault(framework, {}).setdefault(mode, {})[endpoint] = per_request
            figures[framework][mode][f"{endpoint}_records"] = records
    return figures


def print_table(figures: Figures, unit: str) -> None:
    """One row per framework and endpoint: each mode's cost and what it added to bare, the ratios the
    targets are stated in (same run), and what each side made per request: otel-audit's records
    (CRUD must be 1), the tracer's spans, django-auditlog's rows. A mode not run shows ``-``."""
    digits = ",.0f" if unit == "instr" else ",.1f"
    nan = float("nan")
    print(f"per request, {unit}; '+' is added to bare; audit/trace and audit/peer compare the added costs")
    print(f"{'framework':9} {'endpoint':8} {'bare':>10} {'audit +':>10} {'tracing +':>10} {'peer +':>10} "
          f"{'audit/trace':>11} {'audit/peer':>10} {'adapters +':>10} {'records':>7} {'spans':>5} {'rows':>5}")
    for framework, modes in figures.items():
        for endpoint in ENDPOINTS:
            if framework == FLOOR_JOB[0] or not any(endpoint in results for results in modes.values()):
                continue
            bare = modes.get("bare", {}).get(endpoint, nan)
            added = {m: modes.get(m, {}).get(endpoint, nan) - bare for m in MODES}
            made = {m: modes.get(m, {}).get(f"{endpoint}_records", nan) for m in MODES}
            cells = [f"{bare:10{digits}}", f"{added['audit']:10{digits}}", f"{added['tracing']:10{digits}}",
                     f"{added['peer']:10{digits}}", f"{_ratio(added['audit'], added['tracing']):11.2f}",
                     f"{_ratio(added['audit'], added['peer']):10.2f}", f"{added['adapters']:10{digits}}",
                     f"{made['audit']:7.2f}", f"{made['tracing']:5.1f}", f"{made['peer']:5.1f}"]
            print(f"{framework:9} {endpoint:8} " + " ".join(cells).replace("nan", "  -"))
    print_floor(figures, digits)


def print_floor(figures: Figures, digits: str) -> None:
    """One HTTP record end to end (both threads) is what ``audit`` adds to hello-world beyond what
    the ``adapters`` mode adds: decision, attributes, redaction, chain, spool, exporter and sink.
    Shown against the floor of its parts measured in the same run (target: at most 2x)."""
    floor = figures.get(FLOOR_JOB[0], {}).get(FLOOR_JOB[1], {}).get(FLOOR_JOB[2])
    if floor is None:
        return
    print(f"\nfloor of one record (its dict, redaction pass, orjson, HMAC-SHA256, write(2)): {floor:{digits}}")
    for framework, modes in figures.items():
        if framework == FLOOR_JOB[0] or "hello" not in modes.get("audit", {}) or "hello" not in modes.get("adapters", {}):
            continue
        record = modes["audit"]["hello"] - modes["adapters"]["hello"]
        print(f"{framework:9} one HTTP record end to end: {record:{digits}} = {_ratio(record, floor):.2f}x the floor")


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else float("nan")  # also nan when either side was not run


# ---------------------------------------------------------------------------------------------
# Driver side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="run every mode this many times, interleaved; "
                        "report the best (steadier on a shared machine)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--profile", help="framework:mode:endpoint to profile with cProfile (stderr)")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per request under valgrind's callgrind instead of timing "
                        "(all threads; unaffected by other load on the machine)")
    parser.add_argument("--endpoints", default=None, help="comma-separated, of " + ",".join(ENDPOINTS) +
                        " (default: all when timing, hello,crud with --instructions)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, of " + ",".join(MODES) +
                        " (the table needs bare, audit, adapters and tracing; peer runs on Django only)")
    parser.add_argument("--counts", default="100,300", help="--instructions: the two request counts whose "
                        "difference is measured")
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--count-worker", nargs=4, metavar=("FRAMEWORK", "MODE", "ENDPOINT", "N"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.endpoints is None:
        args.endpoints = "hello,crud" if args.instructions else ",".join(ENDPOINTS)
    if args.count_worker:
        framework, mode, endpoint, count = args.count_worker
        global PG
        PG = endpoint == "crud_pg" and _pg_available()
        if endpoint == "crud_pg" and not PG:
            raise SystemExit("crud_pg: no PostgreSQL answered at OTEL_AUDIT_TEST_PG_DSN")
        count_worker(framework, mode, endpoint, int(count))
        return
    if args.worker:
        framework, mode = args.worker
        profile = None
        if args.profile:
            p_framework, p_mode, p_endpoint = args.profile.split(":")
            profile = p_endpoint if (p_framework, p_mode) == (framework, mode) else None
        PG = "crud_pg" in args.endpoints.split(",") and _pg_available()
        print(json.dumps(worker(framework, mode, args.requests, args.repeat, profile, args.endpoints.split(","))))
        return

    figures: Figures = {}
    # The workers start from no OpenTelemetry settings of the caller's (the database's address aside).
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") or k == "OTEL_AUDIT_TEST_PG_DSN"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # Every request is recorded, hello-world's GET included: the default policy's quiet rules would
    # leave it out, and "one HTTP record" would then measure a request that makes no record.
    env["OTEL_AUDIT_POLICY"] = "pack:all-requests"
    if args.instructions:
        # Both counts of a job start alike only with the same string hashes: with a random seed per
        # process, start-up alone moved ~10M instructions between two runs of one worker (~100k
        # per request at counts 50,150), more than the cuts being measured.
        env["PYTHONHASHSEED"] = env.get("PYTHONHASHSEED") or "0"
        # The exporter lets a batch build up for a wall-clock delay; under callgrind a request takes
        # about CALLGRIND_SLOWDOWN times as long, so at the default delay a batch would hold that
        # many times fewer records than it does natively, and each record would carry that much more
        # per-batch work. The delay is scaled to match (the workers print the batch size counted at).
        env["OTEL_AUDIT_EXPORT_DELAY_MS"] = os.environ.get("OTEL_AUDIT_EXPORT_DELAY_MS") or str(
            DEFAULT_EXPORT_DELAY_MS * CALLGRIND_SLOWDOWN)
    frameworks = args.frameworks.split(",")
    if args.instructions:
        low, high = (int(n) for n in args.counts.split(","))
        figures = instruction_figures(frameworks, args.endpoints.split(","), low, high, env,
                                      tuple(args.modes.split(",")))
    else:
        figures = timed_figures(frameworks, args, env)
        for framework, modes in figures.items():
            for endpoint in ENDPOINTS:
                if framework == FLOOR_JOB[0]:
                    break
                if endpoint in args.endpoints.split(",") and endpoint not in next(iter(modes.values())):
                    print(f"{framework}: {endpoint} skipped: no PostgreSQL answered at OTEL_AUDIT_TEST_PG_DSN "
                          "(start one with .ci/start-postgres.sh)", file=sys.stderr)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures, "instr" if args.instructions else "µs")
        if not args.instructions:
            print_adapter_events(figures)


def timed_figures(frameworks: list[str], args: argparse.Namespace, env: dict[str, str]) -> Figures:
    """µs per request, each mode in a fresh worker. Rounds interleave the modes, so a slow spell on a
    shared machine hits every mode alike; each figure is the best over all rounds."""
    figures: Figures = {}
    if "hello" in args.endpoints.split(","):
        frameworks = [*frameworks, FLOOR_JOB[0]]
    for _round in range(args.rounds):
        for framework in frameworks:
            modes = figures.setdefault(framework, {})
            for mode in modes_for(framework, tuple(args.modes.split(","))) if framework != "floor" else ("floor",):
                argv = [sys.executable, __file__, "--worker", framework, mode, "--requests", str(args.requests),
                        "--repeat", str(args.repeat), "--endpoints", args.endpoints]
                if args.profile:
                    argv += ["--profile", args.profile]
                out = subprocess.run(argv, env=env, cwd=REPO, text=True, stdout=subprocess.PIPE,
                                     stderr=None if args.profile else subprocess.PIPE)
                if out.returncode:
                    raise SystemExit(f"{framework} {mode}: worker failed\n{(out.stderr or '')[-3000:]}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                best = modes.setdefault(mode, result)
                for name, value in result.items():
                    if not name.endswith(("_events", "_records")):
                        best[name] = min(best[name], value)
    return figures


def print_adapter_events(figures: Figures) -> None:
    """The adapters' events per request and their µs per event beyond hello-world (per statement or
    ORM change), from the ``adapters`` mode."""
    print(f"\n{'framework':9} {'endpoint':8} {'events/req':>10} {'adapters µs/event':>18}")
    for framework, modes in figures.items():
        if "adapters" not in modes or "bare" not in modes:
            continue
        adapters, bare = modes["adapters"], modes["bare"]
        for endpoint in ENDPOINTS:
            if endpoint not in bare:
                continue
            events = adapters[f"{endpoint}_events"]
            per_event = "-"
            if endpoint != "hello" and "hello" in bare and events > adapters["hello_events"]:
                extra = (adapters[endpoint] - bare[endpoint]) - (adapters["hello"] - bare["hello"])
                per_event = f"{extra / (events - adapters['hello_events']):.1f}"
            print(f"{framework:9} {endpoint:8} {events:10.1f} {per_event:>18}")

if __name__ == "__main__":
    main()
