"""A small, realistic Flask app with nothing audit-specific in it but one ``audited`` export.

Run it the way the demo does:  opentelemetry-instrument python examples/flask_app/app.py
Login answers a failed attempt with 200 and the form again, and a success with a 302 — like many
real apps — so the policy's route classification has real work to do.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from flask import Flask, abort, g, jsonify, redirect, render_template_string, request, session
from werkzeug.security import check_password_hash, generate_password_hash

import otel_audit

LOGIN_FORM = """<!doctype html><title>Sign in</title>
{% if error %}<p class=error>{{ error }}</p>{% endif %}
<form method=post action="/login"><input name=username><input name=password type=password>
<button>Sign in</button></form>"""

SEED_USERS = (("alice", "correct horse", "member"), ("bob", "battery staple", "admin"), ("carol", "tr0ub4dor", "member"))


def create_app(database: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("FLASK_SECRET_KEY", "demo-only-secret-key")
    app.config["DATABASE"] = database or os.environ.get("NOTES_DB", str(Path(os.environ.get("TMPDIR", "/tmp")) / "notes-demo.db"))

    def db() -> sqlite3.Connection:
        if "db" not in g:
            g.db = sqlite3.connect(app.config["DATABASE"])
            g.db.row_factory = sqlite3.Row
        return g.db

    @app.teardown_appcontext
    def close_db(_exc: BaseException | None) -> None:
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

    with app.app_context():
        conn = db()
        conn.executescript(
            """
            DROP TABLE IF EXISTS notes; DROP TABLE IF EXISTS users;
            CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, password_hash TEXT, role TEXT);
            CREATE TABLE notes (id INTEGER PRIMARY KEY, owner_id INTEGER, title TEXT, body TEXT);
            """
        )
        conn.executemany(
            "INSERT INTO users (username, password_hash, role) VALUES (?, ?, ?)",
            [(name, generate_password_hash(pw, method="pbkdf2:sha256:1000"), role) for name, pw, role in SEED_USERS],
        )
        conn.commit()

    @app.before_request
    def load_user() -> None:
        user_id = session.get("user_id")
        g.user = db().execute("SELECT id, username, role FROM users WHERE id = ?", (user_id,)).fetchone() if user_id else None

    def require_login() -> sqlite3.Row:
        if g.user is None:
            abort(401)
        return g.user

    def require_admin() -> sqlite3.Row:
        user = require_login()
        if user["role"] != "admin":
            abort(403)
        return user

    @app.get("/")
    def index():
        return jsonify(service="notes", user=g.user["username"] if g.user else None)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if request.method == "GET":
            return render_template_string(LOGIN_FORM, error=None)
        username = request.form.get("username", "")
        row = db().execute("SELECT id, password_hash FROM users WHERE username = ?", (username,)).fetchone()
        if row is None or not check_password_hash(row["password_hash"], request.form.get("password", "")):
            return render_template_string(LOGIN_FORM, error="Invalid username or password")
        session.clear()
        session["user_id"] = row["id"]
        return redirect("/notes")

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect("/login")

    @app.get("/notes")
    def list_notes():
        user = require_login()
        rows = db().execute("SELECT id, title FROM notes WHERE owner_id = ?", (user["id"],)).fetchall()
        return jsonify([dict(row) for row in rows])

    @app.post("/notes")
    def create_note():
        user = require_login()
        data = request.get_json(force=True)
        cur = db().execute(
            "INSERT INTO notes (owner_id, title, body) VALUES (?, ?, ?)", (user["id"], data["title"], data.get("body", ""))
        )
        db().commit()
        return jsonify(id=cur.lastrowid, title=data["title"]), 201

    def own_note(note_id: int) -> sqlite3.Row:
        user = require_login()
        row = db().execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
        if row is None:
            abort(404)
        if row["owner_id"] != user["id"]:
            abort(403)
        return row

    @app.get("/notes/<int:note_id>")
    def read_note(note_id: int):
        return jsonify(dict(own_note(note_id)))

    @app.put("/notes/<int:note_id>")
    def update_note(note_id: int):
        own_note(note_id)
        data = request.get_json(force=True)
        db().execute("UPDATE notes SET title = ?, body = ? WHERE id = ?", (data["title"], data.get("body", ""), note_id))
        db().commit()
        return jsonify(id=note_id, title=data["title"])

    @app.delete("/notes/<int:note_id>")
    def delete_note(note_id: int):
        own_note(note_id)
        db().execute("DELETE FROM notes WHERE id = ?", (note_id,))
        db().commit()
        return "", 204

    @app.get("/admin/users")
    def admin_users():
        require_admin()
        return jsonify([dict(r) for r in db().execute("SELECT id, username, role FROM users").fetchall()])

    @app.post("/admin/users/<username>/role")
    def admin_set_role(username: str):
        require_admin()
        role = request.get_json(force=True)["role"]
        db().execute("UPDATE users SET role = ? WHERE username = ?", (role, username))
        db().commit()
        return jsonify(username=username, role=role)

    @app.delete("/admin/users/<username>")
    def admin_delete_user(username: str):
        require_admin()
        db().execute("DELETE FROM users WHERE username = ?", (username,))
        db().commit()
        return "", 204

    @app.get("/admin/export")
    @otel_audit.audited("data_access", "export", target_type="user_list")
    def admin_export():
        # What no framework hook can know: this response is a bulk export. One decorator says so.
        require_admin()
        return jsonify([dict(r) for r in db().execute("SELECT id, username, role FROM users").fetchall()])

    @app.get("/boom")
    def boom():
        raise RuntimeError("simulated failure")

    return app


app = create_app()

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), use_reloader=False)
