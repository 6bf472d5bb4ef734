"""A Flask app served by werkzeug's development server, whose access log line (logger
``werkzeug``) quotes the request line with its query string: run under opentelemetry-instrument."""

import os

from flask import Flask

app = Flask(__name__)


@app.get("/health")
def health() -> str:
    return "ok"


@app.post("/echo")
def echo() -> tuple[str, int]:
    return "", 204


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["APP_PORT"]), threaded=True)
