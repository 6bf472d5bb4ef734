"""``_patch.Patch``, the one way adapters patch: a hook around a class method, a module function or a
builtin, with every owner of the same object patched alike and exactly what was there put back."""

from __future__ import annotations

import sqlite3
import types

from otel_audit.instrumentation._patch import Patch


def _tagging(wrapped, instance, args, kwargs):
    return ("hooked", instance is not None, wrapped(*args, **kwargs))


def test_a_class_method_gets_a_plain_function_and_its_own_absence_back() -> None:
    class Base:
        def greet(self, name):
            return f"hi {name}"

    class App(Base):
        pass

    patch = Patch(App, "greet", _tagging)
    patch.install()
    patch.install()  # idempotent
    assert App().greet("x") == ("hooked", True, "hi x")
    assert Base().greet("x") == "hi x"  # only the class it was installed on
    assert isinstance(vars(App)["greet"], types.FunctionType) and App.greet.__wrapped__ is Base.greet
    patch.remove()
    assert "greet" not in vars(App) and App().greet("x") == "hi x"


def test_a_module_function_and_its_second_name_share_one_wrapper() -> None:
    def connect(path):
        return f"conn {path}"

    first, second = types.ModuleType("first"), types.ModuleType("second")
    first.connect = second.connect = connect
    patch = Patch(first, "connect", _tagging, also=(second,))
    patch.install()
    assert first.connect("a") == ("hooked", False, "conn a") and first.connect is second.connect
    patch.remove()
    assert first.connect is connect and second.connect is connect


def test_a_builtin_is_wrapped_by_wrapt_and_restored() -> None:
    fake = types.ModuleType("fake_sqlite3")
    fake.connect = sqlite3.connect
    patch = Patch(fake, "connect", _tagging)
    patch.install()
    tag, _bound, connection = fake.connect(":memory:")
    connection.close()
    assert tag == "hooked" and fake.connect.__wrapped__ is sqlite3.connect
    patch.remove()
    assert fake.connect is sqlite3.connect


def test_an_async_method_keeps_being_awaitable() -> None:
    import asyncio

    class Handler:
        async def respond(self):
            return 7

    async def hook(wrapped, instance, args, kwargs):
        return await wrapped(*args, **kwargs) * 2

    patch = Patch(Handler, "respond", hook)
    patch.install()
    assert asyncio.run(Handler().respond()) == 14
    patch.remove()
    assert asyncio.run(Handler().respond()) == 7
