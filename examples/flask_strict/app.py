"""A small Flask app whose own test suite is strict about warnings (``filterwarnings = ["error"]``,
as the Flask tutorial sets it): its tests must run unchanged under ``opentelemetry-instrument``."""

from __future__ import annotations

import os
import sqlite3

from flask import Flask, abort, g, jsonify, request


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(os.environ["STRICT_DB"])
    return g.db


def init_db(path: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")


def create_app() -> Flask:
    app = Flask(__name__)
    init_db(os.environ["STRICT_DB"])

    @app.teardown_appcontext
    def close_db(_exc: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.get("/items")
    def list_items():
        rows = get_db().execute("SELECT id, name FROM item ORDER BY id").fetchall()
        return jsonify([{"id": i, "name": n} for i, n in rows])

    @app.post("/items")
    def create_item():
        db = get_db()
        cursor = db.execute("INSERT INTO item (name) VALUES (?)", (request.json["name"],))
        db.commit()
        return jsonify({"id": cursor.lastrowid}), 201

    @app.delete("/items/<int:item_id>")
    def delete_item(item_id: int):
        db = get_db()
        if db.execute("DELETE FROM item WHERE id = ?", (item_id,)).rowcount == 0:
            abort(404)
        db.commit()
        return "", 204

    return app
