"""A FastAPI app with every routing shape coverage must see through: nested included routers with
prefixes, a mounted Starlette app with a nested Mount, static files, a Host and a websocket."""

import os
import tempfile

from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Host, Mount, Route
from starlette.staticfiles import StaticFiles


async def text(request):
    return PlainTextResponse("x")


users = APIRouter(prefix="/users")


@users.get("/{user_id}")
def get_user(user_id: int):
    return {}


@users.delete("/{user_id}")
def delete_user(user_id: int):
    return {}


admin = APIRouter()


@admin.post("/roles")
def grant_role():
    return {}


v1 = APIRouter()
v1.include_router(users)
v1.include_router(admin, prefix="/admin")

app = FastAPI()
app.include_router(v1, prefix="/api/v1")


@app.get("/health")
def health():
    return {}


@app.websocket("/ws")
async def ws(socket):
    await socket.close()


legacy = Starlette(routes=[Route("/orders/{order_id}", text, methods=["PUT"]),
                           Mount("/reports", routes=[Route("/daily", text)])])
app.mount("/legacy", legacy)
app.mount("/static", StaticFiles(directory=os.environ.get("SHAPES_STATIC", tempfile.gettempdir())), name="static")
app.router.routes.append(Host("api.example.test", Starlette(routes=[Route("/ping", text, methods=["POST"])])))
