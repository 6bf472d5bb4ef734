"""DB-API adapter for sqlite3 and psycopg (3): every executed statement is a fact of its action.

``sqlite3.Connection`` is a C type that cannot be patched, so (like contrib's dbapi
instrumentation) ``connect`` is wrapped to return a wrapt proxy whose ``cursor()``/``execute()``
hand out proxied cursors. Each ``execute``/``executemany`` is classified from its SQL text
(SELECT -> read_resource, INSERT -> create_resource, UPDATE -> update_resource, DELETE ->
delete_resource, DDL -> schema_change) and folded into the surrounding request's record; outside a
request, the connection's ``commit``/``rollback`` (or autocommit) closes the transaction's record.

When SQLAlchemy drives the same connection its adapter marks it as owned (:func:`mark_owned`), and
this adapter stays silent on it: one statement, one record.
"""

from otel_audit.instrumentation.dbapi.connection import AuditedConnection, AuditedCursor, mark_owned, plain_value
from otel_audit.instrumentation.dbapi.psycopg import PsycopgAuditInstrumentor
from otel_audit.instrumentation.dbapi.sqlite3 import Sqlite3AuditInstrumentor

__all__ = ["AuditedConnection", "AuditedCursor", "PsycopgAuditInstrumentor", "Sqlite3AuditInstrumentor", "mark_owned",
           "plain_value"]
