"""The gate in front of `segattn serve`'s POST /predict (an ASGI middleware): a request that is not
a multipart form is a 415 and one larger than `max_bytes` a 413 (its excess read and dropped, never
held), both answered before the body is parsed. LitServe's own MaxSizeMiddleware raises inside the
app once the limit is crossed, which its handler turns into a 500, and it parses any other content
type as JSON (another 500), hence this gate. The body, at most max_bytes, is read whole here and
handed on unchanged."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class UploadGuard:
    """ASGI middleware: checks POST `path`'s content type and size; everything else passes."""

    def __init__(self, app: App, max_bytes: int, path: str = "/predict") -> None:
        self.app, self.max_bytes, self.path = app, max_bytes, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        kind = headers.get("content-type", "")
        if not kind.lower().startswith("multipart/form-data"):
            shown = kind or "none"
            await refuse(send, 415, f"content type {shown}: expected multipart/form-data with a file field `image`")
            return
        body, size, more = bytearray(), 0, True
        while more:  # past the limit the body is read and dropped: the client then reads its 413
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.max_bytes:
                body += chunk
            more = message.get("more_body", False)
        if size > self.max_bytes:
            await refuse(send, 413, f"the request is {size} bytes; this server takes at most {self.max_bytes}")
            return
        await self.app(scope, replay(bytes(body), receive), send)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the whole body once, then waits on the client (for its disconnect)."""
    given = False

    async def again() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


async def refuse(send: Send, status: int, detail: str) -> None:
    """A JSON error response, {"detail": ...}, as FastAPI answers an HTTPException."""
    content = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
