"""Response headers that keep the dashboard out of frames and other sites' scripts.

Every response refuses to be framed (`X-Frame-Options`, CSP `frame-ancestors`) and sniffed. Pages
get a Content-Security-Policy that allows only this origin's stylesheet, images and forms, and no
script at all (the dashboard has none). The interactive API docs (cx360.api.docs) run scripts and
set their own policy: a response that already carries one keeps it.
"""

from __future__ import annotations

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
ALWAYS = ((b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"))
DOCS = ("/docs", "/redoc")  # Swagger UI and ReDoc run scripts: they only refuse framing


class SecurityHeaders:
    """Plain ASGI, like the metrics middleware: no task or stream per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        docs = scope["path"].startswith(DOCS)

        async def add_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in ALWAYS if h[0] not in names]
                if b"content-security-policy" not in names:
                    policy = "frame-ancestors 'none'" if docs else CSP
                    headers.append((b"content-security-policy", policy.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, add_headers)
