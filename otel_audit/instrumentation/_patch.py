"""Class-level method hooks as plain functions, for methods called on every request.

A wrapt ``FunctionWrapper`` costs a descriptor and a proxy hop per call (about a microsecond);
for ``Flask.full_dispatch_request``, ``Flask.dispatch_request`` and Django's
``BaseHandler._get_response`` the hook is instead a plain function installed on the class, built
once at instrumentation. Hooks keep wrapt's signature ``hook(wrapped, instance, args, kwargs)``,
the installed function carries ``__wrapped__`` (as wrapt's does), and :meth:`MethodHook.remove`
puts back exactly what was there, on the class it was installed on (``flask.Flask`` may be contrib
tracing's subclass by then).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import wrapt

Hook = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


class MethodHook:
    """``hook`` around ``cls.name``; :meth:`install` and :meth:`remove` (idempotent)."""

    def __init__(self, cls: type, name: str, hook: Hook) -> None:
        self.cls = cls
        self.name = name
        self.hook = hook
        self._had_own = False
        self._previous: Any = None
        self._installed: Any = None

    def install(self) -> None:
        if self._installed is not None:
            return
        cls, name, hook = self.cls, self.name, self.hook
        self._had_own = name in cls.__dict__
        self._previous = cls.__dict__.get(name)
        original = getattr(cls, name)
        if inspect.isfunction(original) and not inspect.iscoroutinefunction(original):
            @functools.wraps(original)
            def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
                return hook(original.__get__(self), self, args, kwargs)

            hooked.__wrapped__ = original  # type: ignore[attr-defined]
            installed: Any = hooked
        else:  # anything else (async, descriptors): wrapt keeps its semantics
            installed = wrapt.FunctionWrapper(original, hook)
        setattr(cls, name, installed)
        self._installed = installed

    def remove(self) -> None:
        if self._installed is None:
            return
        cls, name = self.cls, self.name
        if self._had_own:
            setattr(cls, name, self._previous)
        elif name in cls.__dict__:
            delattr(cls, name)
        self._installed = None
        self._previous = None
