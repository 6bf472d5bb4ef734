"""A Flask app shaped like the official tutorial's "flaskr": an application factory, blueprints
(``auth`` under ``/auth``, ``blog`` under ``/blog``), raw ``sqlite3`` (no ORM), session login that
answers 200 with the form again on a wrong password, and ``g.user`` set in a ``before_app_request``
handler. Nothing in it knows about otel-audit."""

from __future__ import annotations

import sqlite3

from flask import Blueprint, Flask, abort, g, redirect, render_template_string, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

SCHEMA = """
DROP TABLE IF EXISTS user;
DROP TABLE IF EXISTS post;
CREATE TABLE user (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT UNIQUE NOT NULL, password TEXT NOT NULL,
                   role TEXT NOT NULL DEFAULT 'member');
CREATE TABLE post (id INTEGER PRIMARY KEY AUTOINCREMENT, author_id INTEGER NOT NULL, title TEXT NOT NULL,
                   body TEXT NOT NULL);
"""

auth = Blueprint("auth", __name__, url_prefix="/auth")
blog = Blueprint("blog", __name__, url_prefix="/blog")
FORM = "<form method=post><input name=username><input name=password type=password></form>{{ error or '' }}"


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(current_app_config("DATABASE"))
        g.db.row_factory = sqlite3.Row
    return g.db


def current_app_config(key: str) -> str:
    from flask import current_app

    return current_app.config[key]


def close_db(exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db(path: str, users: dict[str, tuple[str, str]]) -> None:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    for name, (password, role) in users.items():
        db.execute("INSERT INTO user (username, password, role) VALUES (?, ?, ?)",
                   (name, generate_password_hash(password, method="pbkdf2:sha256:1000"), role))
    db.commit()
    db.close()


@auth.before_app_request
def load_logged_in_user() -> None:
    user_id = session.get("user_id")
    row = get_db().execute("SELECT * FROM user WHERE id = ?", (user_id,)).fetchone() if user_id else None
    g.user = {"id": row["id"], "username": row["username"], "roles": [row["role"]]} if row else None


@auth.route("/register", methods=("POST",))
def register():
    db = get_db()
    try:
        db.execute("INSERT INTO user (username, password) VALUES (?, ?)",
                   (request.form["username"], generate_password_hash(request.form["password"], method="pbkdf2:sha256:1000")))
        db.commit()
    except db.IntegrityError:
        return render_template_string(FORM, error="already registered"), 400
    return redirect(url_for("auth.login"))


@auth.route("/reset-password/", methods=("POST",))  # a trailing slash, as Flask apps often spell it
def reset_password():
    return render_template_string("If {{ name }} exists, a reset link is on its way.", name=request.form["username"])


@auth.route("/login", methods=("GET", "POST"))
def login():
    error = None
    if request.method == "POST":
        row = get_db().execute("SELECT * FROM user WHERE username = ?", (request.form["username"],)).fetchone()
        if row is None or not check_password_hash(row["password"], request.form["password"]):
            error = "Incorrect username or password."
        else:
            session.clear()
            session["user_id"] = row["id"]
            return redirect(url_for("blog.index"))
    return render_template_string(FORM, error=error)  # 200 with the form again on failure


@auth.route("/logout")
def logout():
    session.clear()
    return redirect(url_for("blog.index"))


@blog.route("/<int:id>/promote", methods=("POST",))
def promote(id: int):
    if g.user is None or "admin" not in g.user["roles"]:
        abort(403)
    db = get_db()
    db.execute("UPDATE user SET role = 'admin' WHERE id = ?", (id,))
    db.commit()
    return {"promoted": id}


@blog.route("/")
def index():
    posts = get_db().execute("SELECT id, title FROM post ORDER BY id DESC").fetchall()
    return {"posts": [dict(row) for row in posts]}


@blog.route("/create", methods=("POST",))
def create():
    if g.user is None:
        return redirect(url_for("auth.login"))
    db = get_db()
    cursor = db.execute("INSERT INTO post (title, body, author_id) VALUES (?, ?, ?)",
                        (request.form["title"], request.form.get("body", ""), g.user["id"]))
    db.commit()
    return {"id": cursor.lastrowid}, 201


def get_post(post_id: int) -> sqlite3.Row:
    row = get_db().execute("SELECT * FROM post WHERE id = ?", (post_id,)).fetchone()
    if row is None:
        abort(404)
    if row["author_id"] != g.user["id"] and "admin" not in g.user["roles"]:
        abort(403)
    return row


@blog.route("/<int:id>/update", methods=("POST",))
def update(id: int):
    get_post(id)
    db = get_db()
    db.execute("UPDATE post SET title = ?, body = ? WHERE id = ?", (request.form["title"], request.form["body"], id))
    db.commit()
    return redirect(url_for("blog.index"))


@blog.route("/<int:id>/delete", methods=("POST",))
def delete(id: int):
    get_post(id)
    db = get_db()
    db.execute("DELETE FROM post WHERE id = ?", (id,))
    db.commit()
    return redirect(url_for("blog.index"))


def create_app(database: str) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="dev-only", DATABASE=database)
    app.register_blueprint(auth)
    app.register_blueprint(blog)
    app.teardown_appcontext(close_db)
    return app
