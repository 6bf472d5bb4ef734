"""A Flask app shaped like many small ones: a session login (``session["user_id"]``, what the default
actor sources read), public pages that never read the session, a page that shows who is signed in.
Served by gunicorn in the cache-header tests."""

from __future__ import annotations

from flask import Flask, abort, request, session

USERS = {"alice": "1", "bob": "2"}


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test-only-secret"

    @app.get("/")
    def home() -> str:
        return "welcome"  # the same page for everyone: a shared cache may keep it

    @app.get("/account")
    def account() -> str:
        user_id = session.get("user_id")
        if user_id is None:
            abort(401)
        return f"signed in as {user_id}"

    @app.post("/login")
    def login() -> tuple[str, int]:
        user_id = USERS.get(request.form.get("username", ""))
        if user_id is None:
            return "no such user", 401
        session["user_id"] = user_id
        return "ok", 200

    return app


app = create_app()
