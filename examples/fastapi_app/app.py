"""FastAPI example: a notes API with JWT login, CRUD through SQLAlchemy and an admin role grant.

Nothing here knows about auditing: run it under ``opentelemetry-instrument`` and otel-audit's
ASGI and SQLAlchemy adapters record the requests, the logins (route classification of
``POST /token``), the row changes with the user who made them, and the role grant.

    opentelemetry-instrument uvicorn examples.fastapi_app.app:app --port 8000
    python examples/fastapi_app/traffic.py http://127.0.0.1:8000

Settings (environment): ``DATABASE_URL`` (default: SQLite file in the temp dir),
``JWT_SECRET`` (default: a development secret).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from typing import Annotated, AsyncIterator, Iterator

from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from pydantic import BaseModel
from sqlalchemy import ForeignKey, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{os.path.join(tempfile.gettempdir(), 'fastapi_app.db')}"
JWT_KEY = OctKey.import_key(os.environ.get("JWT_SECRET", "development-only-secret-change-me-32b"))
TOKEN_SECONDS = 3600


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(200), default="")


class Note(Base):
    __tablename__ = "note"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(default="")


class RevokedToken(Base):
    __tablename__ = "revoked_token"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)


def hash_password(password: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()
    return f"{salt}${digest}"


def check_password(password: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return secrets.compare_digest(hash_password(password, salt), stored)


engine = create_engine(DATABASE_URL)


def init_db() -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        if session.scalar(select(User).where(User.username == "alice")) is None:
            session.add_all([
                User(username="alice", password_hash=hash_password("alice-pw"), roles="admin"),
                User(username="bob", password_hash=hash_password("bob-pw"), roles=""),
            ])
            session.commit()


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
bearer = HTTPBearer(auto_error=False)


def current_user(request: Request, session: SessionDep,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated", {"WWW-Authenticate": "Bearer"})
    try:
        token = jwt.decode(credentials.credentials, JWT_KEY, algorithms=["HS256"])
        jwt.JWTClaimsRegistry(exp={"essential": True}).validate(token.claims)
    except (JoseError, ValueError):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token", {"WWW-Authenticate": "Bearer"}) from None
    if session.get(RevokedToken, token.claims.get("jti", "")) is not None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "token revoked", {"WWW-Authenticate": "Bearer"})
    user = session.get(User, int(token.claims["sub"]))
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown user")
    request.state.user = user
    request.state.token_claims = token.claims
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require_admin(user: CurrentUser) -> User:
    if "admin" not in user.roles.split(","):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return user


class Credentials(BaseModel):
    username: str
    password: str


class NoteIn(BaseModel):
    title: str
    body: str = ""


class RoleGrant(BaseModel):
    role: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    init_db()
    yield


app = FastAPI(title="notes", lifespan=lifespan)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/token")
def login(credentials: Credentials, session: SessionDep) -> dict[str, str]:
    user = session.scalar(select(User).where(User.username == credentials.username))
    if user is None or not check_password(credentials.password, user.password_hash):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bad username or password")
    now = int(time.time())
    claims = {"sub": str(user.id), "preferred_username": user.username, "roles": user.roles.split(",") if user.roles else [],
              "iat": now, "exp": now + TOKEN_SECONDS, "jti": uuid.uuid4().hex}
    return {"access_token": jwt.encode({"alg": "HS256"}, claims, JWT_KEY), "token_type": "bearer"}


@app.post("/logout", status_code=204)
def logout(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    session.add(RevokedToken(jti=request.state.token_claims["jti"]))
    session.commit()
    return Response(status_code=204)


def _note_dict(note: Note) -> dict[str, object]:
    return {"id": note.id, "title": note.title, "body": note.body, "owner_id": note.owner_id}


@app.get("/notes")
def list_notes(user: CurrentUser, session: SessionDep) -> list[dict[str, object]]:
    return [_note_dict(n) for n in session.scalars(select(Note).where(Note.owner_id == user.id).order_by(Note.id))]


@app.post("/notes", status_code=201)
def create_note(data: NoteIn, user: CurrentUser, session: SessionDep) -> dict[str, object]:
    note = Note(owner_id=user.id, title=data.title, body=data.body)
    session.add(note)
    session.commit()
    return _note_dict(note)


def _owned_note(note_id: int, user: User, session: Session) -> Note:
    note = session.get(Note, note_id)
    if note is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such note")
    if note.owner_id != user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your note")
    return note


@app.put("/notes/{note_id}")
def update_note(note_id: int, data: NoteIn, user: CurrentUser, session: SessionDep) -> dict[str, object]:
    note = _owned_note(note_id, user, session)
    note.title, note.body = data.title, data.body
    session.commit()
    return _note_dict(note)


@app.delete("/notes/{note_id}", status_code=204)
def delete_note(note_id: int, user: CurrentUser, session: SessionDep) -> Response:
    session.delete(_owned_note(note_id, user, session))
    session.commit()
    return Response(status_code=204)


@app.post("/admin/users/{user_id}/roles")
def grant_role(user_id: int, grant: RoleGrant, admin: Annotated[User, Depends(require_admin)],
               session: SessionDep) -> dict[str, object]:
    target = session.get(User, user_id)
    if target is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    roles = [r for r in target.roles.split(",") if r]
    if grant.role not in roles:
        target.roles = ",".join([*roles, grant.role])
        session.commit()
    return {"id": target.id, "username": target.username, "roles": target.roles.split(",")}


@app.get("/reports/crash")
def crash(user: CurrentUser) -> None:
    raise RuntimeError("report generator failed")


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
