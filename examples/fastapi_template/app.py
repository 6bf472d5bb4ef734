"""A FastAPI app shaped like the official full-stack template's backend: routers under ``/api/v1``,
SQLAlchemy users with ``hashed_password`` and ``is_superuser``, the OAuth2 password flow
(``POST /api/v1/login/access-token`` with a form, answering a JWT bearer token), sign-up, a
superuser's user update, password change and recovery. Nothing in it knows about otel-audit."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException
from fastapi.security import OAuth2PasswordBearer
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

KEY = OctKey.import_key(b"template-example-signing-key-0123456789")
engine = sa.create_engine(os.environ.get("TEMPLATE_DATABASE_URL", "sqlite://"),
                          connect_args={"check_same_thread": False}, poolclass=sa.pool.StaticPool)
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/login/access-token")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    hashed_password: Mapped[str]
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    full_name: Mapped[str] = mapped_column(default="")


def hash_password(password: str) -> str:
    return hashlib.sha256(b"salt" + password.encode()).hexdigest()


def get_session() -> Any:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_user(session: SessionDep, token: Annotated[str, Depends(oauth2)]) -> User:
    try:
        claims = jwt.decode(token, KEY, algorithms=["HS256"]).claims
    except Exception:  # noqa: BLE001
        raise HTTPException(status_code=403, detail="Could not validate credentials") from None
    user = session.get(User, int(claims["sub"]))
    if user is None or not user.is_active:
        raise HTTPException(status_code=403, detail="Inactive user")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
login = APIRouter(tags=["login"])
users = APIRouter(prefix="/users", tags=["users"])
utils = APIRouter(tags=["utils"])


@login.post("/login/access-token")
def access_token(session: SessionDep, username: Annotated[str, Form()], password: Annotated[str, Form()]) -> dict:
    user = session.scalar(sa.select(User).where(User.email == username))
    if user is None or user.hashed_password != hash_password(password):
        raise HTTPException(status_code=400, detail="Incorrect email or password")
    claims = {"sub": str(user.id), "exp": int(time.time()) + 3600}
    return {"access_token": jwt.encode({"alg": "HS256"}, claims, KEY), "token_type": "bearer"}


@login.post("/password-recovery/{email}")
def recover_password(email: str) -> dict:
    return {"message": "Password recovery email sent"}


@users.post("/signup")
def signup(session: SessionDep, body: dict) -> dict:
    user = User(email=body["email"], hashed_password=hash_password(body["password"]),
                full_name=body.get("full_name", ""))
    session.add(user)
    session.commit()
    return {"id": user.id, "email": user.email}


@users.patch("/me/password")
def update_password_me(session: SessionDep, user: CurrentUser, body: dict) -> dict:
    if user.hashed_password != hash_password(body["current_password"]):
        raise HTTPException(status_code=400, detail="Incorrect password")
    user.hashed_password = hash_password(body["new_password"])
    session.commit()
    return {"message": "Password updated successfully"}


@users.patch("/{user_id}")
def update_user(session: SessionDep, user: CurrentUser, user_id: int, body: dict) -> dict:
    if not user.is_superuser:
        raise HTTPException(status_code=403, detail="The user doesn't have enough privileges")
    target = session.get(User, user_id)
    for key, value in body.items():
        setattr(target, key, value)
    session.commit()
    return {"id": target.id, "is_superuser": target.is_superuser}


@users.delete("/{user_id}")
def delete_user(session: SessionDep, user: CurrentUser, user_id: int) -> dict:
    if not user.is_superuser:
        raise HTTPException(status_code=403, detail="The user doesn't have enough privileges")
    session.delete(session.get(User, user_id))
    session.commit()
    return {"message": "User deleted successfully"}


@utils.get("/health-check/")
def health() -> bool:
    return True


api = APIRouter()
api.include_router(login)
api.include_router(users)
api.include_router(utils, prefix="/utils")
app = FastAPI(title="template")
app.include_router(api, prefix="/api/v1")


def init_db() -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(User(email="admin@example.com", hashed_password=hash_password("admin-pw"), is_superuser=True))
        session.commit()
