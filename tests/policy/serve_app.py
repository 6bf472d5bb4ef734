"""Run tests/policy/apps.py on 127.0.0.1:$PORT (started under opentelemetry-instrument by the tests)."""

import os

from tests.policy.apps import create_app

if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ["PORT"]), use_reloader=False)
