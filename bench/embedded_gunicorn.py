"""gunicorn serving a WSGI app object built in this process (the bench's test platforms)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class EmbeddedGunicorn(BaseApplication):  # type: ignore[misc]
    """Forked workers inherit the app and whatever it holds (keys, state) from this process."""

    def __init__(self, app: WSGIApplication, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApplication:
        return self.application
