"""A small real Flask app for the policy tests: a form login that answers a bad password with 200
and the form again and a good one with a 302, admin routes, a JWT-authenticated API."""

from __future__ import annotations

import base64
import json
from typing import Any

import flask

USERS = {
    "alice": {"id": "u-alice", "username": "alice", "password": "wonderland", "roles": ["admin"]},
    "bob": {"id": "u-bob", "username": "bob", "password": "builder", "roles": ["editor"]},
}
BY_ID = {user["id"]: user for user in USERS.values()}

FORM = "<form method=post><input name=username><input name=password type=password></form>"


def make_jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def create_app() -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = "test-only-secret"

    @app.before_request
    def load_user() -> None:
        user_id = flask.session.get("user_id")
        if user_id in BY_ID:
            user = BY_ID[user_id]
            flask.g.user = {"id": user["id"], "username": user["username"], "roles": user["roles"]}

    @app.route("/auth/login", methods=["GET", "POST"])
    def login() -> Any:
        if flask.request.method == "POST":
            user = USERS.get(flask.request.form.get("username", ""))
            if user and user["password"] == flask.request.form.get("password"):
                flask.session["user_id"] = user["id"]
                return flask.redirect("/dashboard")
            return FORM, 200  # a failed login: the form again, status 200
        return FORM

    @app.route("/auth/logout")
    def logout() -> Any:
        flask.session.clear()
        return flask.redirect("/auth/login")

    @app.route("/dashboard")
    def dashboard() -> Any:
        return {"user": flask.g.get("user", {}).get("username")}

    @app.route("/items/<int:item_id>", methods=["GET", "DELETE"])
    def item(item_id: int) -> Any:
        if flask.request.method == "DELETE":
            return "", 204
        return {"id": item_id, "name": "widget"}

    @app.route("/admin/users/<int:user_id>", methods=["DELETE"])
    def admin_delete(user_id: int) -> Any:
        if "admin" not in flask.g.get("user", {}).get("roles", []):
            return {"error": "forbidden"}, 403
        return "", 204

    @app.route("/users/<int:user_id>/roles", methods=["POST"])
    def grant_role(user_id: int) -> Any:
        return {"granted": flask.request.get_json(silent=True)}, 201

    @app.route("/search")
    def search() -> Any:
        return {"results": [1, 2], "q": flask.request.args.get("q")}

    @app.route("/api/profile", methods=["GET", "PUT"])
    def profile() -> Any:
        return {"profile": "ok"}

    @app.route("/health")
    def health() -> Any:
        return "ok"

    return app


def login(client: Any, username: str, password: str) -> Any:
    return client.post("/auth/login", data={"username": username, "password": password})
