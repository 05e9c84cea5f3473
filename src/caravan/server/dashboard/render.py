"""HTML rendering: the Jinja2 environment, its filters, the dashboard's URLs, and fragments.

Everything is autoescaped; templates never mark engine data safe. A ``Fragment`` is a piece of a
page with an element id that the browser swaps when it changes (live updates, form answers):
pages place fragments in wrappers carrying a digest, so a browser skips updates it already has.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from caravan import __version__
from caravan.server.board import format_duration, format_time, short_id
from caravan.server.dashboard.security import TOKEN_FIELD, FormGuard

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/ui/static"


# The text of a running duration changes on every drawing; the browser counts it on its own, so
# it does not make a fragment different.
_COUNTING = re.compile(r'(data-since="[^"]*">)[^<]*')


@dataclass(frozen=True)
class Fragment:
    id: str  # the element id in the page, e.g. "stage-Build"
    html: Markup

    @property
    def digest(self) -> str:
        stable = _COUNTING.sub(r"\1", str(self.html))
        return hashlib.sha256(stable.encode()).hexdigest()[:16]

    def message(self) -> dict[str, str]:
        return {"id": self.id, "digest": self.digest, "html": str(self.html)}


# URLs -----------------------------------------------------------------------------------------
def _segment(value: str) -> str:
    return quote(value, safe="")


def pipeline_url(name: str) -> str:
    return f"/pipelines/{_segment(name)}"


def executions_url(name: str, next_token: str | None = None) -> str:
    query = f"?{urlencode({'nextToken': next_token})}" if next_token else ""
    return f"{pipeline_url(name)}/executions{query}"


def execution_url(name: str, execution_id: str) -> str:
    return f"{pipeline_url(name)}/executions/{_segment(execution_id)}"


def log_url(action_execution_id: str, pipeline: str | None = None, execution: str = "") -> str:
    context = {k: v for k, v in (("pipeline", pipeline), ("execution", execution)) if v}
    query = f"?{urlencode(context)}" if context else ""
    return f"/actions/{_segment(action_execution_id)}/log{query}"


def form_url(name: str, verb: str) -> str:
    """Where a pipeline page's form posts: start, stop, retry, approval, transition."""
    return f"{pipeline_url(name)}/{verb}"


def events_url(view: str, pipeline: str | None = None, execution: str | None = None) -> str:
    params = {"view": view, "pipeline": pipeline or "", "execution": execution or ""}
    return "/ui/events?" + urlencode({k: v for k, v in params.items() if v})


def static_url(name: str) -> str:
    # The version in the query lets browsers cache the files until caravan is upgraded.
    return f"{STATIC_PREFIX}/{name}?v={__version__}"


# Filters --------------------------------------------------------------------------------------
def status_class(status: str | None) -> str:
    return f"status-{status.lower()}" if status else "status-none"


def short_revision(revision: str | None) -> str:
    text = revision or ""
    is_sha = len(text) >= 12 and all(c in "0123456789abcdef" for c in text)
    return text[:7] if is_sha else text


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def http_url(url: str) -> bool:
    """Whether ``url`` may be a link target (never ``javascript:`` or ``data:``)."""
    return url.lower().startswith(("http://", "https://"))


def duration(seconds: float | None) -> str:
    return format_duration(seconds)


def when(epoch: float | None) -> str:
    return format_time(epoch)


class Renderer:
    """Renders pages and fragments with one autoescaping environment."""

    def __init__(self, guard: FormGuard) -> None:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            duration=duration,
            when=when,
            short=short_id,
            revision=short_revision,
            status_class=status_class,
            percent=percent,
            http_url=http_url,
        )
        env.globals.update(
            csrf=guard.token,
            csrf_field=TOKEN_FIELD,
            pipeline_url=pipeline_url,
            executions_url=executions_url,
            execution_url=execution_url,
            log_url=log_url,
            form_url=form_url,
            events_url=events_url,
            static_url=static_url,
            version=__version__,
        )
        self.env = env

    def render(self, template: str, **context: Any) -> Markup:
        return Markup(self.env.get_template(template).render(**context))  # noqa: S704

    def fragment(self, fragment_id: str, template: str, **context: Any) -> Fragment:
        return Fragment(fragment_id, self.render(template, **context))
