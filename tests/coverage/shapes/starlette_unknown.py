"""A Starlette app with a route object of its own kind: coverage cannot list what it routes."""

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.responses import PlainTextResponse


class TenantRouter(BaseRoute):
    """Dispatches by tenant header; its routes are not visible to a walk."""

    def matches(self, scope):  # pragma: no cover - never served in the test
        raise NotImplementedError


async def home(request):
    return PlainTextResponse("home")


app = Starlette(routes=[Route("/", home), TenantRouter()])
