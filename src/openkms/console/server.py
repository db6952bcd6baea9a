"""The uvicorn factory ``openkms serve`` runs in each worker: the API application, with the
console attached to it (answering under /console) unless the settings turn the console off."""

from __future__ import annotations

import gc

from openkms.config import settings_from_env
from openkms.console.app import ConsoleApp
from openkms.http.app import OpenKMSApp, create_app


def app_from_env() -> OpenKMSApp:
    settings = settings_from_env()
    inner = create_app(settings)
    if settings.console_enabled:
        # The API app routes /console to the console itself (OpenKMSApp.console), rather than
        # every API request passing through ConsoleApp.__call__ first.
        inner.console = ConsoleApp(inner)
    # As openkms.http.app.app_from_env: what is loaded by now lives as long as the worker.
    gc.collect()
    gc.freeze()
    return inner
