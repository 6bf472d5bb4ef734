"""A Flask app with blueprints: a url_prefix, a nested blueprint, and one on a subdomain."""

import os

from flask import Blueprint, Flask

api = Blueprint("api", __name__, url_prefix="/api")
items = Blueprint("items", __name__, url_prefix="/items")
billing = Blueprint("billing", __name__, subdomain="billing")


@items.get("/<int:item_id>")
def get_item(item_id):
    return ""


@items.delete("/<int:item_id>")
def delete_item(item_id):
    return ""


@billing.post("/invoices")
def create_invoice():
    return ""


api.register_blueprint(items)

app = Flask(__name__, subdomain_matching=True)
app.config["SERVER_NAME"] = "shop.test"
if os.environ.get("SHAPES_DATABASE"):
    app.config["DATABASE"] = os.environ["SHAPES_DATABASE"]
app.register_blueprint(api)
app.register_blueprint(billing)


@app.route("/", methods=["GET", "POST"])
def index():
    return ""
