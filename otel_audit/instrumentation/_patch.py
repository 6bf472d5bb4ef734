"""The one way adapters patch a framework: :class:`Patch` puts a hook around ``owner.name`` (a class
or a module attribute) and :meth:`Patch.remove` puts back exactly what was there.

Hooks have wrapt's signature ``hook(wrapped, instance, args, kwargs)``. A plain Python function (a
method called on every request, such as ``Flask.full_dispatch_request`` or Django's
``BaseHandler._get_response``) is replaced by a plain function built once: a wrapt
``FunctionWrapper`` costs a descriptor and a proxy hop per call (about a microsecond). Anything
else (async functions, builtins such as ``sqlite3.connect``, bound and class methods, descriptors)
gets a wrapt ``FunctionWrapper``, which keeps their semantics. Either carries ``__wrapped__``.
``also`` names more owners of the same object (``sqlite3.connect`` is ``sqlite3.dbapi2.connect``):
they get the same replacement. On a class, removal restores the class the hook was installed on
(``flask.Flask`` may be contrib tracing's subclass by then).
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import Any, Callable, Sequence

import wrapt

Hook = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


def _replacement(owner: Any, original: Any, hook: Hook) -> Any:
    if inspect.isfunction(original) and not inspect.iscoroutinefunction(original):
        if isinstance(owner, type):
            @functools.wraps(original)
            def hooked_method(self: Any, *args: Any, **kwargs: Any) -> Any:
                return hook(original.__get__(self), self, args, kwargs)

            hooked_method.__wrapped__ = original  # type: ignore[attr-defined]
            return hooked_method

        @functools.wraps(original)
        def hooked_function(*args: Any, **kwargs: Any) -> Any:
            return hook(original, None, args, kwargs)

        hooked_function.__wrapped__ = original  # type: ignore[attr-defined]
        return hooked_function
    return wrapt.FunctionWrapper(original, hook)


class Patch:
    """``hook`` around ``owner.name``; :meth:`install` and :meth:`remove` are idempotent."""

    def __init__(self, owner: Any, name: str, hook: Hook, also: Sequence[Any] = ()) -> None:
        self.owners = (owner, *also)
        self.name = name
        self.hook = hook
        self._saved: list[tuple[Any, bool, Any]] = []  # (owner, had its own attribute, what it held)
        self.installed: Any = None

    def install(self) -> None:
        if self.installed is not None:
            return
        first = self.owners[0]
        # On a class, the attribute as stored (a classmethod stays a descriptor for wrapt to bind).
        original = inspect.getattr_static(first, self.name) if isinstance(first, type) else getattr(first, self.name)
        installed = _replacement(first, original, self.hook)
        for owner in self.owners:
            own = vars(owner) if isinstance(owner, (type, types.ModuleType)) else {}
            self._saved.append((owner, self.name in own, own.get(self.name)))
            setattr(owner, self.name, installed)
        self.installed = installed

    def remove(self) -> None:
        if self.installed is None:
            return
        for owner, had_own, previous in self._saved:
            if had_own:
                setattr(owner, self.name, previous)
            elif self.name in vars(owner):
                delattr(owner, self.name)
        self._saved.clear()
        self.installed = None
