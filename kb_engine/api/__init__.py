"""The HTTP API (FastAPI): `create_app(settings)` builds it; `kb serve` runs it."""

from kb_engine.api.main import create_app

__all__ = ["create_app"]
