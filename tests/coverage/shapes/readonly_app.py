"""A Flask app that only reads: no DELETE route, no table it could delete from."""

from flask import Flask

app = Flask(__name__)


@app.get("/articles")
def articles():
    return "[]"


@app.get("/articles/<int:article_id>")
def article(article_id):
    return "{}"
