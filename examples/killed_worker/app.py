"""A Flask app whose worker dies (SIGKILL) inside a view right after committing a deletion: the
case an action's one record, written at response time, could otherwise never tell."""

from __future__ import annotations

import os
import signal
import sqlite3

from flask import Flask

app = Flask(__name__)
DATABASE = os.environ["KILLED_WORKER_DB"]


@app.get("/health")
def health():
    return "ok"


@app.delete("/items/<int:item_id>")
def delete_item(item_id: int):
    db = sqlite3.connect(DATABASE)
    db.execute("DELETE FROM items WHERE id = ?", (item_id,))
    db.commit()  # the change is committed ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... and the worker is gone before any response
    return "", 204
