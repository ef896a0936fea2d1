"""The one way Pathways makes outbound HTTP requests: timeouts and a product User-Agent."""

from __future__ import annotations

import httpx

from lti_app.settings import Settings


def make_http_client(settings: Settings, **kwargs: object) -> httpx.Client:
    """A pooled client; pylti1p3's default of no timeout would let a hung LMS hold a worker."""
    timeout = httpx.Timeout(
        settings.http_read_timeout, connect=settings.http_connect_timeout, pool=5.0
    )
    return httpx.Client(
        timeout=timeout,
        headers={"User-Agent": settings.user_agent},
        follow_redirects=False,
        **kwargs,  # type: ignore[arg-type]
    )
