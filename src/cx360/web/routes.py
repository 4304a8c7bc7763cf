"""Dashboard pages. Login takes an API key and keeps a signed session cookie.

Every form that changes state (log in, log out) carries a CSRF token: an HMAC of the session cookie,
or before login of a random login cookie, so another site cannot post it (SameSite=Strict cookies
already stop most of that; the token covers browsers and proxies that do not honour it). Cookies
are `Secure` when the request came over HTTPS, directly or through a trusted proxy."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from cx360.api import services
from cx360.api.access import Principal
from cx360.errors import (
    AuthError,
    ConfigError,
    Cx360Error,
    ForbiddenError,
    NotFoundError,
    StageNotRunError,
    WarehouseLockedError,
)
from cx360.privacy import small_groups
from cx360.web import charts, format, reports

HERE = Path(__file__).parent
COOKIE = "cx360_session"
LOGIN_COOKIE = "cx360_login"  # binds the login form's CSRF token to this browser
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(histogram=charts.histogram, bars=charts.bars, line=charts.line, funnel=charts.funnel)
templates.env.globals.update(tone_columns=charts.tone_columns)
templates.env.globals.update(items=charts.items, label_of=format.label, words_of=format.words)
templates.env.filters.update(format.FILTERS)
router = APIRouter(include_in_schema=False)
SESSION_SECONDS = 8 * 3600
# Sessions are signed cookies (key id, expiry, HMAC), so that every worker process accepts them;
# `cx360 serve --workers` shares one secret through the environment.
_SECRET = os.environ.get("CX360_SERVE_SECRET", "").encode() or secrets.token_bytes(32)


def _sign(payload: str) -> str:
    return hmac.new(_SECRET, payload.encode(), hashlib.sha256).hexdigest()


def _session(request: Request) -> Principal | None:
    key_id, _, rest = request.cookies.get(COOKIE, "").partition(".")
    expires, _, signature = rest.partition(".")
    if not (key_id and expires.isdigit() and hmac.compare_digest(_sign(f"{key_id}.{expires}"), signature)):
        return None
    if int(expires) < time.time():
        return None
    try:
        return request.app.state.ctx.keys.principal(key_id)  # a revoked key ends its sessions too
    except AuthError:
        return None


def mount(app: FastAPI) -> None:
    from cx360.web.headers import SecurityHeaders

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.add_middleware(SecurityHeaders)


def csrf_token(request: Request, *, login: bool = False) -> str:
    """The token a form must send back: the login form's is bound to the login cookie, every other
    form's to the session."""
    binding = request.cookies.get(LOGIN_COOKIE if login else COOKIE) or ""
    return _sign(f"csrf.{binding}") if binding else ""


def _check_csrf(request: Request, token: str, *, login: bool = False) -> None:
    expected = csrf_token(request, login=login)
    if not (expected and hmac.compare_digest(expected, token)):
        raise ForbiddenError("this form expired or came from another site: reload the page and try again")


def _https(request: Request) -> bool:
    peer = request.client.host if request.client else None
    return request.app.state.ctx.proxies.https(request.url.scheme, peer, request.headers.get("x-forwarded-proto"))


def _who(request: Request) -> Principal:
    who = _session(request)
    if who is None:
        raise AuthError("log in with an API key")
    return who


def _page(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    who = _session(request)
    return templates.TemplateResponse(
        request, name, {"who": who, "csrf": csrf_token(request), **context}, status_code=status
    )


def error_page(request: Request, exc: Cx360Error) -> Response:
    if isinstance(exc, AuthError):
        return RedirectResponse("/login", status_code=303)
    return _page(request, "error.html", status=exc.http_status, message=str(exc), status_code=exc.http_status)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    if request.cookies.get(LOGIN_COOKIE):
        return _page(request, "login.html", login_csrf=csrf_token(request, login=True))
    nonce = secrets.token_urlsafe(16)
    response = _page(request, "login.html", login_csrf=_sign(f"csrf.{nonce}"))  # bound to the cookie it sets
    response.set_cookie(
        LOGIN_COOKIE, nonce, httponly=True, samesite="strict", secure=_https(request), max_age=SESSION_SECONDS
    )
    return response


@router.post("/login")
def login(request: Request, key: Annotated[str, Form()], csrf: Annotated[str, Form()] = "") -> Response:
    _check_csrf(request, csrf, login=True)
    try:
        who = request.app.state.ctx.keys.authenticate(key.strip())
    except AuthError as exc:
        return _page(request, "login.html", status=401, message=str(exc), login_csrf=csrf)
    payload = f"{who.key_id}.{int(time.time()) + SESSION_SECONDS}"
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        f"{payload}.{_sign(payload)}",
        httponly=True,
        samesite="strict",
        secure=_https(request),
        max_age=SESSION_SECONDS,
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    _check_csrf(request, csrf)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=_https(request))
    return response


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    ctx, who = request.app.state.ctx, _who(request)
    store = ctx.store
    return _page(
        request,
        "overview.html",
        segments=services.list_segments(ctx, who) if who.can("segments") else None,
        distributions=store.distributions,
        churn_note=None if "churn" in store.tables else "Not scored yet: run cx360 churn score to see churn risk.",
        campaigns=services.campaigns(ctx, who),
        channels=store.channels,
        channel_items=[(format.label(c["channel"] or "(none)"), c["events"]) for c in store.channels],
        counts=store.counts(),
        built_at=store.built_at,
    )


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, q: str = "") -> HTMLResponse:
    ctx, who = request.app.state.ctx, _who(request)
    hits = services.search(ctx, who, q, client=_client(request)) if q.strip() else []
    return _page(request, "search.html", q=q, hits=hits)


@router.get("/segments", response_class=HTMLResponse)
def segments(request: Request) -> HTMLResponse:
    ctx, who = request.app.state.ctx, _who(request)
    return _page(request, "segments.html", segments=services.list_segments(ctx, who))


@router.get("/calls", response_class=HTMLResponse)
def calls(request: Request) -> HTMLResponse:
    ctx, who = request.app.state.ctx, _who(request)
    return _page(request, "calls.html", o=services.call_outcomes(ctx, who))


@router.get("/customers/{profile_id}", response_class=HTMLResponse)
def customer(request: Request, profile_id: str, cursor: str | None = None) -> HTMLResponse:
    ctx, who = request.app.state.ctx, _who(request)
    profile = services.get_profile(ctx, who, profile_id, client=_client(request), action="dashboard")
    timeline = (
        services.get_timeline(ctx, who, profile["profile_id"], limit=25, cursor=cursor, client=_client(request))
        if who.can("timeline")
        else None
    )
    scores = {k: v for k, v in (profile["scores"] or {}).items() if k != "churn" and v is not None}
    return _page(
        request,
        "customer.html",
        p=profile,
        nba=_next_best_action(request, ctx, who, profile["profile_id"]),
        issues=services.prior_issues(ctx, who, profile["profile_id"], client=_client(request)),
        timeline=timeline,
        scores=scores,
        churn=(profile["scores"] or {}).get("churn"),
        archetypes=_archetype_history(request, ctx, who, profile),
    )


def _archetype_history(request: Request, ctx, who: Principal, profile: dict) -> list[dict] | None:
    """The person's stays in each archetype, oldest first, as the archetypes stage recorded them; like
    the archetype itself, withheld without consent to profiling, and the read is audited."""
    from cx360.scoring.habits import TABLE, person

    if profile.get("withheld"):
        return None
    pid = profile["profile_id"]
    try:
        stays = reports.fresh(
            ctx.root, lambda ws: person(ws.engine, pid).archetypes if ws.engine.has_table(TABLE) else []
        )
    except WarehouseLockedError:
        return None  # a batch holds the warehouse: the card shows the rest
    ctx.audit.record(who, "archetype_history", pid, [TABLE], _client(request))
    return stays


def _next_best_action(request: Request, ctx, who: Principal, pid: str) -> dict:
    """What POST /v1/decisions answers for the person now, or why there is none (no `cx360 decide` yet)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        answer = services.next_best_action(ctx, who, pid, at=now, client=_client(request))
    except StageNotRunError as exc:
        return {"missing": str(exc)}
    held = [c for c in answer["candidates"] if c.get("suppressed_by")]
    scored = sorted((c for c in answer["candidates"] if not c.get("suppressed_by")), key=lambda c: -c["expected_value"])
    return {**answer, "held": held, "scored": scored}


def _client(request: Request) -> str | None:
    peer = request.client.host if request.client else None
    return request.app.state.ctx.proxies.client(peer, request.headers.get("x-forwarded-for"))


# -- workspace reports: funnels, forms, visits, segments -------------------------------------------
def _reader(request: Request) -> tuple[services.Context, Principal]:
    """Aggregate pages count people, never name them: any role that reads profiles may see them."""
    who = _who(request)
    who.require("profile")
    return request.app.state.ctx, who


def _shown(ctx: services.Context, who: Principal, report):
    """The report as `who` may see it: exact with personal data, else with groups of fewer than
    `[serve] min_group_size` people pooled (cx360.privacy.small_groups)."""
    return report if who.can("pii") else small_groups.pooled(report, ctx.settings.min_group_size)


@router.get("/funnels", response_class=HTMLResponse)
def funnels(request: Request, by: str | None = None) -> HTMLResponse:
    from cx360.funnels.service import funnel_report

    ctx, who = _reader(request)
    names = [f.name for f in services.workspace_config(ctx).funnels]
    found = [reports.cached(ctx.root, ("funnel", n, by), lambda ws, n=n: funnel_report(ws, n, by)) for n in names]
    return _page(request, "funnels.html", funnels=_shown(ctx, who, found), by=by)


@router.get("/forms", response_class=HTMLResponse)
def forms(request: Request) -> HTMLResponse:
    from cx360.funnels.service import form_report

    ctx, who = _reader(request)
    return _page(request, "forms.html", forms=_shown(ctx, who, reports.cached(ctx.root, ("forms",), form_report)))


@router.get("/visits", response_class=HTMLResponse)
def visits(request: Request, place: str | None = None) -> HTMLResponse:
    from cx360.visits.service import places, visit_report

    ctx, who = _reader(request)
    place = place or None
    known = reports.cached(ctx.root, ("places",), places)
    report = reports.cached(ctx.root, ("visits", place), lambda ws: visit_report(ws, place)) if known else None
    return _page(request, "visits.html", r=_shown(ctx, who, report), places=known, place=place)


@router.get("/segments/{name}", response_class=HTMLResponse)
def segment(request: Request, name: str, after: str | None = None) -> HTMLResponse:
    from cx360.segments.history import sizes

    ctx, who = request.app.state.ctx, _who(request)
    listed = services.list_segments(ctx, who)
    row = next((s for s in listed["segments"] if s["name"] == name), None)
    if row is None:
        known = ", ".join(s["name"] for s in listed["segments"]) or "none"
        raise NotFoundError(f"no segment named '{name}'; segments: {known}")
    history = reports.cached(
        ctx.root,
        ("sizes", name),
        lambda ws: ws.engine.to_arrow(sizes(ws.engine, name), step=f"segment {name!r}: sizes").to_pylist(),
    )
    members, members_note = None, None
    if row["status"] == "ok":
        try:
            members = services.segment_members(ctx, who, name, after=after, limit=MEMBERS_PAGE, client=_client(request))
        except ForbiddenError as exc:
            members_note = str(exc)
    people = {}
    if members and who.can("profile"):  # each member as the card shows them: masked per role, audited
        for m in members["members"]:
            try:
                shown = services.get_profile(
                    ctx, who, m["profile_id"], client=_client(request), action="segment_members"
                )
            except NotFoundError:  # erased since the evaluation
                continue
            a = shown["attributes"]
            name = " ".join(a[k]["value"] for k in ("first_name", "last_name") if a.get(k) and a[k]["value"])
            people[m["profile_id"]] = {"name": name, "city": (a.get("city") or {}).get("value")}
    return _page(
        request, "segment.html", s=row, history=history, members=members, members_note=members_note, people=people
    )


MEMBERS_PAGE = 25


@router.post("/segments/{name}/export")
def segment_export(
    request: Request, name: str, csrf: Annotated[str, Form()] = "", file_format: Annotated[str, Form()] = "csv"
) -> Response:
    """The segment's audience as `cx360 segments export` writes it: the same consent check, refusal of a
    failed or stale segment, and an audit entry; a role without personal data may take no identifier."""
    import tempfile

    from cx360.segments.export import audience, write

    _check_csrf(request, csrf)
    ctx, who = request.app.state.ctx, _who(request)
    who.require("segments")
    aud = reports.fresh(ctx.root, lambda ws: audience(ws, name))
    if aud.purpose not in who.purposes:
        raise ForbiddenError(f"this API key is not for {aud.purpose} (its purposes: {', '.join(sorted(who.purposes))})")
    if aud.identifiers and not who.can("pii"):
        raise ForbiddenError(f"role {who.role!r} may not export identifiers ({', '.join(aud.identifiers)})")
    ctx.audit.record(who, "segment_export", None, [f"segment_members.{name}", *aud.identifiers], _client(request))
    if file_format not in ("csv", "parquet"):
        raise ConfigError(f"unknown export format {file_format!r}; use csv or parquet")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.{file_format}"
        write(aud, path, file_format)
        body = path.read_bytes()
    media = "text/csv" if file_format == "csv" else "application/vnd.apache.parquet"
    return Response(
        body,
        media_type=media,
        headers={
            "content-disposition": f'attachment; filename="{name}.{file_format}"',
            "x-cx360-withheld": str(aud.withheld),
        },
    )


@router.get("/listening", response_class=HTMLResponse)
def listening(request: Request) -> HTMLResponse:
    from cx360.listening.service import prospects, trend

    ctx, who = _reader(request)
    try:
        found = reports.cached(ctx.root, ("listening",), lambda ws: (trend(ws), prospects(ws, limit=0)[0]))
    except StageNotRunError as exc:
        return _page(request, "listening.html", t=None, missing=str(exc), prospects=None)
    shown = _shown(ctx, who, {"trend": found[0], "prospects": found[1]})
    return _page(request, "listening.html", t=shown["trend"], prospects=shown["prospects"], missing=None)


@router.get("/habits", response_class=HTMLResponse)
def habits(request: Request) -> HTMLResponse:
    from cx360.scoring.habits import habits_report

    ctx, who = _reader(request)
    try:
        found = reports.cached(ctx.root, ("habits",), habits_report)
    except StageNotRunError as exc:
        return _page(request, "habits.html", h=None, missing=str(exc))
    return _page(request, "habits.html", h=_shown(ctx, who, found), missing=None)
