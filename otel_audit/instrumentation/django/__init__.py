"""Django adapter: each request is one action; logins, model changes and group/permission grants are
facts of it (one record per request, see docs/adapters.md). ``request`` hooks the handler,
``auth`` the auth signals, ``models`` the model signals, ``routes`` lists the URLconf for
``otel-audit coverage``; this module connects them."""

from __future__ import annotations

from typing import Any, Collection

from django.contrib.auth import signals as auth_signals
from django.core import signals as core_signals
from django.core.handlers.base import BaseHandler
from django.db.models import signals as model_signals
from django.db.models.deletion import Collector
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_audit.instrumentation._patch import Patch
from otel_audit.instrumentation.django import auth, models, request

_SIGNALS = (
    (core_signals.got_request_exception, request._got_request_exception),
    (auth_signals.user_logged_in, auth._logged_in),
    (auth_signals.user_logged_out, auth._logged_out),
    (auth_signals.user_login_failed, auth._login_failed),
    (model_signals.post_init, models._post_init),
    (model_signals.pre_save, models._pre_save),
    (model_signals.post_save, models._post_save),
    (model_signals.m2m_changed, models._m2m_changed),
)
_DISPATCH_UID = "otel_audit"
#: Every request passes ``_get_response``: a plain-function hook (``_patch.py``), not a wrapt proxy.
_PATCHES = (Patch(BaseHandler, "load_middleware", request._load_middleware),
            Patch(BaseHandler, "_get_response", request._get_response),
            Patch(BaseHandler, "_get_response_async", request._get_response_async),
            Patch(Collector, "delete", models._collector_delete))


class DjangoAuditInstrumentor(BaseInstrumentor):
    """Audits Django requests, auth signals, model changes, role grants and admin actions."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("django >= 4.2",)

    def _instrument(self, **kwargs: Any) -> None:
        request.ENABLED = True
        for patch in _PATCHES:
            patch.install()
        for signal, receiver in _SIGNALS:
            signal.connect(receiver, weak=False, dispatch_uid=f"{_DISPATCH_UID}.{receiver.__name__}")

    def _uninstrument(self, **kwargs: Any) -> None:
        request.ENABLED = False
        for patch in reversed(_PATCHES):
            patch.remove()
        for signal, receiver in _SIGNALS:
            signal.disconnect(receiver, dispatch_uid=f"{_DISPATCH_UID}.{receiver.__name__}")
        request.restore_handlers()
