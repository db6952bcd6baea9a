"""What a console page handler gets: the request, its session, and the API as the signed-in
principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment

from openkms.config import Settings
from openkms.console.client import ApiClient, Origin
from openkms.console.sessions import Session
from openkms.console.web import Request, Response
from openkms.http.metrics import Metrics


@dataclass(slots=True)
class Page:
    """What a handler gets: the request, its session, the API as the signed-in principal."""

    request: Request
    session: Session
    params: dict[str, str]
    api: ApiClient
    templates: Environment
    settings: Settings
    region: str
    metrics: Metrics | None

    @property
    def origin(self) -> Origin:
        return Origin(
            host=self.request.host,
            client=self.request.client,
            scheme=self.request.scheme,
            region=self.region,
            browser_agent=self.request.headers.get("user-agent", ""),
        )

    async def kms(self, operation: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.api.kms(
            self.session.creds, self.origin, operation, params or {}
        )

    async def openkms(
        self, operation: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """An openkms extension (key search), as the signed-in principal."""
        return await self.api.openkms(
            self.session.creds, self.origin, operation, params or {}
        )

    async def secrets(
        self, operation: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.api.secrets(
            self.session.creds, self.origin, operation, params or {}
        )

    async def query(self, service: str, action: str, params: dict[str, str] | None = None) -> Any:
        return await self.api.query(
            self.session.creds, self.origin, service, action, params or {}
        )

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        body = self.templates.get_template(template).render(
            session=self.session,
            csrf=self.session.csrf_token,
            nav=template.split("_", 1)[0],
            **values,
        )
        return Response(status, body.encode())
