"""The console's routes: three pages, their static files, and the caller's role.

    GET /             chat, what the customer sees      its actions need `bot`
    GET /agent        agent assist                      `agent` (/v1/suggest, /v1/feedback)
    GET /content      content team                      `admin` (eval run, gaps); search needs `agent`
    /static/…         CSS, JavaScript, the icon         a mount: files, no data
    GET /v1/whoami    the role of the caller's key      `bot`: a page asks for a key once, then says
                                                        what the key lacks before the user types
    GET /v1/admin/eval/latest                           `admin`, in ``kb_engine.web.evals``

The pages are the same HTML for everyone, so they are Public and left out of the OpenAPI schema;
the data comes from the JSON API, called by the page with the user's key. A page's CSP allows
nothing but this origin: the console works air-gapped, and an answer's text cannot load anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from kb_engine.api.deps import BotRole, Public, Role, SettingsDep
from kb_engine.api.errors import ERRORS
from kb_engine.web import evals

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # article links leave for the help centre: no console URLs with them
    "Cache-Control": "no-cache",
}

_templates = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(), trim_blocks=True, lstrip_blocks=True
)

router = APIRouter()


class _Assets(StaticFiles):
    """Static files revalidated on every load (ETag, so mostly a 304): a new version is seen at once,
    with no version numbers in URLs and no build step to write them."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


router.mount("/static", _Assets(directory=STATIC), name="static")


# page → (title, the role all its actions need, the role some need); its script is static/<page>.js
PAGES: dict[str, tuple[str, Role, Role]] = {
    "chat": ("Чат поддержки", "bot", "bot"),
    "agent": ("Подсказки оператору", "agent", "agent"),
    "content": ("Контент и качество", "admin", "agent"),  # search: agent; eval run, gaps: admin
}


def _page(page: str) -> HTMLResponse:
    title, role, least_role = PAGES[page]
    template = _templates.get_template(f"{page}.html")
    html = template.render(page=page, title=title, role=role, least_role=least_role)
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get("/", response_class=HTMLResponse, include_in_schema=False, dependencies=[Public])
def chat_page() -> HTMLResponse:
    return _page("chat")


@router.get("/agent", response_class=HTMLResponse, include_in_schema=False, dependencies=[Public])
def agent_page() -> HTMLResponse:
    return _page("agent")


@router.get("/content", response_class=HTMLResponse, include_in_schema=False, dependencies=[Public])
def content_page() -> HTMLResponse:
    return _page("content")


class Caller(BaseModel):
    role: Role | None = Field(description="The key's role; null when no keys are configured.")
    keys: bool = Field(description="Whether the server has API keys (KB_API_KEYS); without, all is open.")


@router.get("/v1/whoami", response_model=Caller, responses=ERRORS, tags=["console"])
def whoami(role: BotRole, settings: SettingsDep) -> Caller:
    """The role of the key sent (any valid key may ask): the console checks a key when it is entered."""
    return Caller(role=role, keys=bool(settings.api_keys))


router.include_router(evals.router)
