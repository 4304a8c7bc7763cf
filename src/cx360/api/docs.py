"""/docs (Swagger UI) and /redoc, served from the assets that the fastapi-offline package installs:
they work without internet (FastAPI's own pages load them from a CDN), need no inline script, and a
Content-Security-Policy keeps the browser from fetching anything elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"


def _assets() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


# Nothing but this server: ReDoc would otherwise fetch its logo from the internet.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; frame-ancestors 'none'"
)


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        headers={"Content-Security-Policy": _CSP},
        content=f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{ASSETS_URL}/favicon.png">{head}</head>
<body>{body}</body></html>""",
    )


def mount(app: FastAPI) -> None:
    """Call on an app created with docs_url=None and redoc_url=None."""
    app.mount(ASSETS_URL, StaticFiles(directory=_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{app.title} API",
            f'<link rel="stylesheet" href="{root}{ASSETS_URL}/swagger-ui.css">',
            f'<div id="swagger-ui"></div><script src="{root}{ASSETS_URL}/swagger-ui-bundle.js"></script>'
            f'<script src="{root}/docs/init.js"></script>',
        )

    @app.get("/docs/init.js", include_in_schema=False)
    def swagger_init(request: Request) -> Response:
        url = json.dumps(request.scope.get("root_path", "") + app.openapi_url)
        return Response(
            f"window.ui = SwaggerUIBundle({{url: {url}, dom_id: '#swagger-ui', deepLinking: true, "
            "presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset], "
            "layout: 'BaseLayout'});\n",
            media_type="text/javascript",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{app.title} API",
            "",
            f'<redoc spec-url="{root}{app.openapi_url}"></redoc>'
            f'<script src="{root}{ASSETS_URL}/redoc.standalone.js"></script>',
        )
