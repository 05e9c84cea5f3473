"""Who may submit the dashboard's forms (the buttons that change what runs).

The server has no users and so no sessions; the defence is against other web sites making the
browser of someone who can reach the server submit a form (cross-site request forgery):

1. Every form carries a token minted by this process for the form's own action path: HMAC-SHA256
   of the path under a random secret made when the dashboard is built. Another site cannot read
   the page (the same-origin policy), so it cannot know the token. A token opens one path only,
   and a restarted server refuses old ones: an open page gets fresh tokens with its next live
   update, or on reload.
2. Browsers say where a request comes from in ``Sec-Fetch-Site``; anything but ``same-origin``
   (or ``none``: typed in, a bookmark) is refused, even with a token. ``Origin`` is not compared
   with ``Host`` on purpose: reverse proxies rewrite ``Host``, and the token already decides.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from caravan.errors import CaravanError

TOKEN_FIELD = "csrf"  # noqa: S105 (a form field name, not a secret)
_PURPOSE = b"caravan-dashboard-form:"
_ALLOWED_FETCH_SITES = ("same-origin", "none")


class FormRejectedError(CaravanError):
    """A form submission that did not come from this dashboard's own pages."""

    reference = "form-rejected"
    aws_type = "AccessDeniedException"
    exit_code = 2
    http_status = 403


class FormGuard:
    """Mints and checks the per-path form tokens of one dashboard."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def token(self, path: str) -> str:
        """The token a form posting to ``path`` must carry."""
        return hmac.new(self._secret, _PURPOSE + path.encode(), hashlib.sha256).hexdigest()

    def check(self, path: str, token: str | None, headers: Mapping[str, str]) -> None:
        """Raise ``FormRejectedError`` unless the submission to ``path`` is this dashboard's."""
        site = headers.get("sec-fetch-site")
        if site is not None and site not in _ALLOWED_FETCH_SITES:
            raise FormRejectedError(
                f"form submitted to {path} from another site (Sec-Fetch-Site: {site}) refused",
                hint="use the buttons of the caravan dashboard itself",
            )
        if not token:
            raise FormRejectedError(
                f"form submitted to {path} has no {TOKEN_FIELD} token",
                hint="submit the form from the dashboard page",
            )
        if not hmac.compare_digest(token, self.token(path)):
            raise FormRejectedError(
                f"form submitted to {path} has a {TOKEN_FIELD} token this server did not issue",
                hint="the server may have restarted since the page was loaded: reload the page",
            )
