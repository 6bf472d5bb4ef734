"""A tiny Flask app whose audited DELETE has a side effect we can check: it removes a file."""

from __future__ import annotations

import os
from pathlib import Path

import flask

ITEMS = Path(os.environ["ITEMS_DIR"])
app = flask.Flask(__name__)


@app.get("/items")
def items():
    return {"items": sorted(p.name for p in ITEMS.iterdir())}


@app.delete("/items/<name>")
def delete_item(name: str):
    (ITEMS / name).unlink()
    return "", 204
