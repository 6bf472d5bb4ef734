"""Framework adapters: one package per framework, each a thin ``BaseInstrumentor`` that translates
framework facts into the current request's context (:mod:`otel_audit.context`) and hands changes,
signals and the finished request to :mod:`otel_audit.recording`; every decision is the pipeline's.

Rooms: ``flask``, ``django`` (``request``, ``auth``, ``models``), ``starlette`` (FastAPI too),
``sqlalchemy``, ``dbapi`` (``sqlite3``, ``psycopg``), ``logging`` (the stdlib bridge) — each with
its route or table discovery for ``otel-audit coverage`` next to its hooks — and the shared
``_http`` (one HTTP exchange), ``_request`` (the exchange of this context), ``_sql`` (statement
parsing), ``_patch`` (the one way to patch), ``bootstrap`` (the launcher's always-on instrumentor).

May import: the framework of its own package only (``tests/foundation/test_layering.py``), the shared
modules here, and the core (context, recording, event, actors, config, errors, runtime).
"""
