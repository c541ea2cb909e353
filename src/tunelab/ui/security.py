"""Who may use the workbench: loopback by default, a token anywhere else.

Three checks run before every request:

- **Host.** Bound to loopback, the server answers only requests addressed to a loopback name,
  so a web page elsewhere cannot reach it through a DNS name that points at 127.0.0.1.
- **Token.** With a token (``--token``, or generated and printed when binding elsewhere),
  every request carries it: ``Authorization: Bearer``, the cookie the first visit with
  ``?token=`` sets, or that query; compared in constant time.
- **Origin of changes.** Requests that change something (POST, PUT, DELETE) must carry the
  header ``X-Tunelab-UI: 1``, which the pages' own scripts send and which another site's
  form or image cannot: no cross-site request starts a job or writes a file.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
COOKIE = "tunelab_ui_token"
HEADER = "x-tunelab-ui"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# the pages need nothing from elsewhere; the browser refuses anything that tries
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'self'"
)
# workspace files (reports, uploads) open as inert documents of no origin: an uploaded HTML
# file cannot run script against the workbench
FILE_POLICY = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def is_loopback(host: str) -> bool:
    return host.strip("[]") in LOOPBACK


def token_for(host: str, token: str | None) -> tuple[str | None, bool]:
    """The token the server asks for, and whether it was generated here.

    A loopback server needs none unless given one; any other address gets ``token`` or a
    new random one (``secrets.token_urlsafe``), which the caller prints.
    """
    if token:
        return token, False
    if is_loopback(host):
        return None, False
    return secrets.token_urlsafe(24), True


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[1 : header.find("]")]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def check_request(
    method: str,
    path: str,
    headers: Any,
    cookies: Any,
    query: Any,
    token: str | None,
    loopback_only: bool,
) -> tuple[int, str] | None:
    """``None`` if the request may pass, else the HTTP status and the sentence to answer."""
    if loopback_only and not is_loopback(_host_name(headers.get("host", ""))):
        return 403, (
            f"this workbench answers requests to 127.0.0.1 or localhost only, not "
            f"{headers.get('host', '')!r}; open it at http://127.0.0.1:<port>/"
        )
    if token is not None:
        bearer = headers.get("authorization", "")
        given = (
            bearer[7:]
            if bearer.lower().startswith("bearer ")
            else cookies.get(COOKIE) or query.get("token") or ""
        )
        if not hmac.compare_digest(given.encode(), token.encode()):
            return 401, (
                "this workbench needs its token: open the address tunelab ui printed "
                "(it ends in ?token=...), or send Authorization: Bearer <token>"
            )
    if method not in SAFE_METHODS and headers.get(HEADER) != "1":
        return 403, (
            f"requests that change something must come from the workbench's own pages "
            f"(header X-Tunelab-UI: 1); {method} {path} was refused"
        )
    return None
