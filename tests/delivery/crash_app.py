"""A tiny Flask app for the crash test: every request is audited, the body echoes its number."""

import flask

app = flask.Flask(__name__)


@app.get("/item/<int:number>")
def item(number: int):
    return {"item": number}


@app.get("/health")
def health():
    return "ok"
