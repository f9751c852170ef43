"""The server's gate (ASGI middleware): the bearer token (401) and the body size limits (413), before the body."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPEN_PATHS = ("/", "/healthz", "/favicon.ico")  # with /static/*: no token needed, they hold no data


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


class Guard:
    """ASGI middleware: the token (401) and the body size limit (413), before anything reads the body."""

    def __init__(
        self, app: ASGIApp, *, token: str | None, max_body_bytes: int, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.path_limits = path_limits or {}  # paths that take larger bodies (an uploaded image)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path = scope["path"]
        is_open = path in OPEN_PATHS or path.startswith("/static/")
        refusal = None if self.token is None or is_open else self._refusal(headers.get(b"authorization"))
        if refusal is not None:
            response = error_response(401, "unauthorized", refusal)
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        limit = self.path_limits.get(path, self.max_body_bytes)
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await error_response(400, "bad_request", "Content-Length is not a number")(scope, receive, send)
            elif int(length) > limit:
                await self._too_large(scope, receive, send, limit)
            else:
                await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read the body here, up to the limit, then replay it.
        body, more = b"", True
        while more:
            message_in = await receive()
            if message_in["type"] == "http.disconnect":
                return
            body += message_in.get("body", b"")
            more = message_in.get("more_body", False)
            if len(body) > limit:
                await self._too_large(scope, receive, send, limit)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        message = f"request body is over {limit} bytes; send less"
        await error_response(413, "body_too_large", message)(scope, receive, send)

    def _refusal(self, header: bytes | None) -> str | None:
        """Why a request's Authorization header is refused, or None when it carries the token."""
        if not header:
            return "missing token; send the header 'Authorization: Bearer TOKEN'"
        scheme, _, value = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return f"the Authorization header uses {scheme or 'no'} scheme; send 'Authorization: Bearer TOKEN'"
        if not hmac.compare_digest(value.strip().encode("latin-1"), (self.token or "").encode("latin-1")):
            return "wrong token; send the token the server was started with, as 'Authorization: Bearer TOKEN'"
        return None
