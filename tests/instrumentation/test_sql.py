"""DB-API (sqlite3, psycopg) and SQLAlchemy (sync, async, ORM) adapters against real databases."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from otel_audit.context import RequestScope, enter_scope, exit_scope
from otel_audit.event import Actor, HttpInfo
from otel_audit.instrumentation._sql import parse_statement_uncached
from otel_audit.instrumentation.dbapi import AuditedConnection, PsycopgAuditInstrumentor, Sqlite3AuditInstrumentor
from otel_audit.instrumentation.sqlalchemy import SQLAlchemyAuditInstrumentor


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('SELECT a FROM "public"."post" WHERE id = 1', ("data_access", "read_resource", "SELECT", "public.post")),
        ("insert into post (title) values (?)", ("data_modification", "create_resource", "INSERT", "post")),
        ("UPDATE ONLY accounts SET balance = 0", ("data_modification", "update_resource", "UPDATE", "accounts")),
        ("/* app */ DELETE FROM blog_post WHERE id = %s", ("data_modification", "delete_resource", "DELETE", "blog_post")),
        ("WITH gone AS (SELECT 1) DELETE FROM t USING gone", ("data_modification", "delete_resource", "DELETE", "t")),
        ("CREATE TABLE IF NOT EXISTS foo (id int)", ("configuration", "schema_change", "CREATE", "foo")),
        ("ALTER TABLE `user list` ADD c int", ("configuration", "schema_change", "ALTER", "user list")),
        ("TRUNCATE TABLE audit_trail", ("data_modification", "delete_resource", "TRUNCATE", "audit_trail")),
        ("SELECT count(*) FROM (SELECT * FROM post) AS anon_1", ("data_access", "read_resource", "SELECT", "post")),
        ("MERGE INTO stock USING delivery ON true", ("data_modification", "update_resource", "MERGE", "stock")),
    ],
)
def test_statement_classification(sql, expected):
    assert tuple(parse_statement_uncached(sql)) == expected


@pytest.mark.parametrize("sql", ["BEGIN", "COMMIT", "PRAGMA foreign_keys = ON", "SAVEPOINT sa_1", "SET search_path TO x"])
def test_housekeeping_statements_are_not_events(sql):
    assert parse_statement_uncached(sql) is None


def _in_request(actor_id: str, route: str = "/posts/<id>"):
    return enter_scope(RequestScope(actor=Actor(id=actor_id, type="user"), http=HttpInfo(method="DELETE", route=route)))


def test_sqlite3_statements_become_events_with_the_request_actor(statement_audit, instrument, tmp_path):
    instrument(Sqlite3AuditInstrumentor())
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert isinstance(conn, AuditedConnection)
        conn.execute("CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT)")
        cursor = conn.cursor()
        cursor.executemany("INSERT INTO post (title) VALUES (?)", [("a",), ("b",), ("c",)])
        token = _in_request("42")
        try:
            cursor.execute("DELETE FROM post WHERE id = ?", (2,))
        finally:
            exit_scope(token)
        rows = conn.execute("SELECT id, title FROM post ORDER BY id").fetchall()
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("UPDATE missing_table SET x = 1")
    assert rows == [(1, "a"), (3, "c")]  # the app's results are untouched

    (ddl,) = statement_audit.find("configuration", "schema_change", operation="CREATE")
    assert ddl.db.collection == "post" and ddl.db.system == "sqlite" and ddl.db.namespace == "app.db"
    (insert,) = statement_audit.find("data_modification", "create_resource")
    assert insert.db.row_count == 3 and insert.db.parameters == [["a"], ["b"], ["c"]]
    (delete,) = statement_audit.find("data_modification", "delete_resource")
    assert delete.actor.id == "42" and delete.http.route == "/posts/<id>"
    assert delete.db.row_count == 1 and delete.db.parameters == [2]
    assert delete.db.query_text == "DELETE FROM post WHERE id = ?"
    (select,) = statement_audit.find("data_access", "read_resource")
    assert select.db.collection == "post" and select.actor.type == "system"
    (failed,) = statement_audit.find("data_modification", "update_resource")
    assert failed.outcome == "failure" and failed.error_type == "sqlite3.OperationalError"

    records = {r["attributes"]["audit.event_id"]: r for r in statement_audit.records()}
    exported = records[delete.event_id]
    assert exported["event_name"] == "audit.data_modification.delete_resource"
    assert exported["attributes"]["enduser.id"] == "42"
    assert exported["attributes"]["db.collection.name"] == "post"


def test_uninstrument_restores_the_plain_driver(statement_audit, tmp_path):
    instrumentor = Sqlite3AuditInstrumentor()
    instrumentor.instrument(skip_dep_check=True)
    instrumentor.uninstrument()
    conn = sqlite3.connect(":memory:")
    assert type(conn) is sqlite3.Connection
    conn.execute("CREATE TABLE t (x)")
    assert statement_audit.events == [] or all(e.category == "audit_system" for e in statement_audit.events)


def test_psycopg_statements_against_postgresql(statement_audit, instrument, pg_dsn):
    import psycopg

    instrument(PsycopgAuditInstrumentor())
    table = f"audit_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert isinstance(conn, AuditedConnection)
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, owner text)")
        token = _in_request("alice")
        try:
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO {table} (owner) VALUES (%s), (%s)", ("x", "y"))
                cur.execute(f"UPDATE {table} SET owner = %(owner)s WHERE id = 1", {"owner": "z"})
                cur.execute(f"SELECT owner FROM {table} ORDER BY id")
                assert [row[0] for row in cur.fetchall()] == ["z", "y"]
        finally:
            exit_scope(token)
        conn.execute(f"DROP TABLE {table}")
    inserts = _statements(statement_audit, "create_resource", table)
    assert len(inserts) == 1, [(e.origin, e.db.query_text, e.db.parameters) for e in inserts]
    (insert,) = inserts
    assert insert.db.system == "postgresql" and insert.db.namespace == "otel_audit"
    assert insert.db.row_count == 2 and insert.actor.id == "alice"
    (update,) = statement_audit.find("data_modification", "update_resource", collection=table)
    assert update.db.parameters == {"owner": "z"}
    (select,) = statement_audit.find("data_access", "read_resource", collection=table)
    assert select.db.row_count == 2
    assert len(statement_audit.find("configuration", "schema_change", collection=table)) == 2


class Base(DeclarativeBase):
    pass


class Post(Base):
    __tablename__ = "post"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    body: Mapped[str] = mapped_column(default="")


def _crud(session: Session) -> int:
    post = Post(title="hello", body="first")
    session.add(post)
    session.commit()
    assert post.title == "hello"  # loaded, so the old value is known to the flush
    post.title = "hello again"
    session.commit()
    session.delete(post)
    session.commit()
    return post.id


def _statements(audit, action: str, table: str) -> list:
    """Statement-level records (not the ORM's row-level ones, which name the same table)."""
    return [e for e in audit.find("data_modification", action, collection=table) if not e.origin.endswith(".orm")]


def _check_orm_and_statements(statement_audit, post_id: int, table: str = "post", actor: str = "7") -> None:
    (created,) = statement_audit.find("data_modification", "create_resource", origin="sqlalchemy.orm")
    assert created.target.type == table and created.target.id == str(post_id)
    assert set(created.changed_fields) >= {"title", "body"}
    (updated,) = statement_audit.find("data_modification", "update_resource", origin="sqlalchemy.orm")
    assert updated.changed_fields == ("title",) and updated.actor.id == actor
    assert updated.changes[0].values == {"title": {"new": "hello again", "old": "hello"}}
    (deleted,) = statement_audit.find("data_modification", "delete_resource", origin="sqlalchemy.orm")
    assert deleted.target.id == str(post_id)
    # Statement level: exactly one record per statement even though the DB-API adapter is on too.
    inserts = _statements(statement_audit, "create_resource", table)
    assert len(inserts) == 1, [(e.origin, e.db.query_text, e.db.parameters) for e in inserts]
    (insert,) = inserts
    assert insert.origin == "sqlalchemy" and insert.actor.id == actor and insert.db.row_count == 1
    assert len(_statements(statement_audit, "update_resource", table)) == 1
    assert len(_statements(statement_audit, "delete_resource", table)) == 1
    assert not [e for e in statement_audit.events if e.origin.startswith("dbapi")]


def test_sqlalchemy_sync_sqlite_statements_and_orm_changes(statement_audit, instrument, tmp_path):
    instrument(Sqlite3AuditInstrumentor(), SQLAlchemyAuditInstrumentor())
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'orm.db'}")
    Base.metadata.create_all(engine)
    assert statement_audit.find("configuration", "schema_change", collection="post")
    token = _in_request("7")
    try:
        with Session(engine) as session:
            post_id = _crud(session)
    finally:
        exit_scope(token)
    _check_orm_and_statements(statement_audit, post_id)
    engine.dispose()


def test_sqlalchemy_failed_statement_is_a_failure_event(statement_audit, instrument):
    instrument(SQLAlchemyAuditInstrumentor())
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn, pytest.raises(sa.exc.OperationalError):
        conn.execute(sa.text("DELETE FROM nowhere"))
    (failed,) = statement_audit.find("data_modification", "delete_resource")
    assert failed.outcome == "failure" and failed.error_type == "sqlite3.OperationalError"


def test_sqlalchemy_async_aiosqlite(statement_audit, instrument, tmp_path):
    pytest.importorskip("aiosqlite")
    pytest.importorskip("greenlet", reason="SQLAlchemy's asyncio support needs sqlalchemy[asyncio]")
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    instrument(Sqlite3AuditInstrumentor(), SQLAlchemyAuditInstrumentor())

    async def main() -> int:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.db'}")
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        token = _in_request("7")
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                post_id = await session.run_sync(_crud)
        finally:
            exit_scope(token)
        await engine.dispose()
        return post_id

    _check_orm_and_statements(statement_audit, asyncio.run(main()))


def _pg_table_class(table: str):
    class PgBase(DeclarativeBase):
        pass

    return type("PgPost", (PgBase,), {
        "__tablename__": table,
        "__annotations__": {"id": Mapped[int], "title": Mapped[str], "body": Mapped[str]},
        "id": mapped_column(primary_key=True),
        "title": mapped_column(),
        "body": mapped_column(default=""),
    }), PgBase


def _pg_crud(session: Session, model) -> int:
    post = model(title="hello", body="first")
    session.add(post)
    session.commit()
    assert post.title == "hello"
    post.title = "hello again"
    session.commit()
    session.delete(post)
    session.commit()
    return post.id


def test_sqlalchemy_postgresql_sync(statement_audit, instrument, pg_dsn):
    instrument(PsycopgAuditInstrumentor(), SQLAlchemyAuditInstrumentor())
    table = f"post_{uuid.uuid4().hex[:8]}"
    model, base = _pg_table_class(table)
    engine = sa.create_engine(pg_dsn.replace("postgresql://", "postgresql+psycopg://"))
    base.metadata.create_all(engine)
    try:
        token = _in_request("7")
        try:
            with Session(engine) as session:
                post_id = _pg_crud(session, model)
        finally:
            exit_scope(token)
    finally:
        base.metadata.drop_all(engine)
        engine.dispose()
    _check_orm_and_statements(statement_audit, post_id, table=table)
    inserts = _statements(statement_audit, "create_resource", table)
    assert len(inserts) == 1, [(e.origin, e.db.query_text, e.db.parameters) for e in inserts]
    (insert,) = inserts
    assert insert.db.system == "postgresql" and insert.db.namespace == "otel_audit"


def test_sqlalchemy_postgresql_async(statement_audit, instrument, pg_dsn):
    pytest.importorskip("greenlet", reason="SQLAlchemy's asyncio support needs sqlalchemy[asyncio]")
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    instrument(PsycopgAuditInstrumentor(), SQLAlchemyAuditInstrumentor())
    table = f"post_{uuid.uuid4().hex[:8]}"
    model, base = _pg_table_class(table)

    async def main() -> int:
        engine = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+psycopg://"))
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.create_all)
        try:
            token = _in_request("7")
            try:
                async with AsyncSession(engine, expire_on_commit=False) as session:
                    return await session.run_sync(lambda s: _pg_crud(s, model))
            finally:
                exit_scope(token)
        finally:
            async with engine.begin() as conn:
                await conn.run_sync(base.metadata.drop_all)
            await engine.dispose()

    post_id = asyncio.run(main())
    _check_orm_and_statements(statement_audit, post_id, table=table)


def test_psycopg_uninstrument_restores_connect():
    import psycopg

    original = psycopg.connect
    instrumentor = PsycopgAuditInstrumentor()
    instrumentor.instrument(skip_dep_check=True)
    assert psycopg.connect is not original
    instrumentor.uninstrument()
    assert psycopg.connect == original  # a bound classmethod: equal, not identical
    instrumentor.instrument(skip_dep_check=True)  # and again, without stacking wrappers
    instrumentor.uninstrument()
    assert psycopg.connect == original


def test_sqlite3_executescript_records_each_statement(statement_audit, instrument, tmp_path):
    instrument(Sqlite3AuditInstrumentor())
    conn = sqlite3.connect(tmp_path / "script.db")
    conn.executescript(
        "DROP TABLE IF EXISTS users; CREATE TABLE users (id INTEGER PRIMARY KEY, note TEXT);"
        "INSERT INTO users (note) VALUES ('a; not a split');"
    )
    assert conn.execute("SELECT note FROM users").fetchone() == ("a; not a split",)  # the app's script ran
    with pytest.raises(sqlite3.OperationalError):
        conn.executescript("DELETE FROM missing_table;")
    conn.close()
    ddl = statement_audit.find("configuration", "schema_change")
    assert sorted(e.db.operation for e in ddl) == ["CREATE", "DROP"]
    assert all(e.db.collection == "users" for e in ddl)
    (insert,) = statement_audit.find("account_management", "create_user")  # a row of the user table: an account
    assert insert.db.query_text == "INSERT INTO users (note) VALUES ('a; not a split');"
    (failed,) = statement_audit.find("data_modification", "delete_resource")
    assert failed.outcome == "failure" and failed.error_type == "sqlite3.OperationalError"


@pytest.mark.parametrize(("sql", "operation", "columns"), [
    ("INSERT INTO logs (`client.address`, `audit.outcome`) VALUES (?, ?)", "INSERT", ("client.address", "audit.outcome")),
    ('UPDATE "app"."users" SET "is_staff" = 1, [dbo.flag] = NULL WHERE id = ?', "UPDATE", ("is_staff", "dbo.flag")),
    ('INSERT INTO t ("say ""hi""", plain) VALUES (?, ?)', "INSERT", ('say "hi"', "plain")),
])
def test_written_columns_keep_dots_and_quotes_inside_quoted_names(sql, operation, columns) -> None:
    from otel_audit.instrumentation._sql import columns_of

    assert tuple(name for name, _value in columns_of(sql, operation)) == columns
