"""The dashboard in a real headless Chromium against a real `cx360 serve` process: log in with a key,
search, open a customer card, check what it shows (and hides, for a role without personal data).

Uses Debian's chromium (apt-get install chromium); with CX360_TEST_SERVICES=1 its absence fails."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from serve_world import build_world, evaluate_segments, write_churn_scores

from cx360.api.access import create_key

CHROMIUM = os.environ.get("CX360_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _require_browser() -> None:
    missing = None
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed (pip install -e '.[test]')"
    if missing is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing = f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("CX360_TEST_SERVICES") == "1":
            pytest.fail(f"browser tests required (CX360_TEST_SERVICES=1) but {missing}")
        pytest.skip(missing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_browser()
    root = tmp_path_factory.mktemp("dash")
    build_world(root)
    evaluate_segments(root)
    write_churn_scores(root)
    _decision_models(root)
    keys = {role: create_key(root, role, f"ui-{role}")[1] for role in ("agent", "analyst")}
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        boris = ws.profile("boris@x.ru").profile_id
    port = _free_port()
    log = (tmp_path_factory.getbasetemp() / "serve.log").open("w")
    # two worker processes: a session cookie signed by one must be accepted by the other
    proc = subprocess.Popen(
        [sys.executable, "-m", "cx360", "serve", "-w", str(root), "--port", str(port), "--workers", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("cx360 serve did not start: " + Path(log.name).read_text())
            time.sleep(0.2)
    yield url, keys, root, boris
    proc.terminate()
    proc.wait(10)


OFFERS = """
[privacy.purposes.marketing]
default = "opt-out"
channels = ["email", "sms"]

[contact_policy]
quiet_hours = [22, 8]
[contact_policy.channels.email]
[contact_policy.channels.sms]

[[offers]]
name = "deposit"
value = 120
channels = ["email", "sms"]

[[offers]]
name = "pension"
where = "age_years >= 60"
value = 300
channels = ["email"]
"""


def _decision_models(root: Path) -> None:
    """A catalogue, and response models as `cx360 decide` saves them, fitted on a marketing history of
    made-up people (the tiny world has too few answers to fit its own)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    import pandas as pd

    from cx360.decisions.decide import MODEL_DIR
    from cx360.decisions.responses import Models

    with (root / "cx360.toml").open("a", encoding="utf-8") as f:
        f.write(OFFERS)
    n = 120
    history = pd.DataFrame(
        {
            "profile_id": [f"X{i % 40}" for i in range(n)],
            "ts": pd.date_range("2025-01-01", periods=n, freq="37h"),
            "name": ["offer_accepted" if i % 4 == 0 else "offer_ignored" for i in range(n)],
            "channel": ["sms" if i % 3 else "email" for i in range(n)],
            "offer": ["deposit" if i % 2 else "pension" for i in range(n)],
        }
    )
    activity = pd.DataFrame({"profile_id": ["X1", "X2"], "hour": [10, 18], "n": [5, 3]})
    models = Models(history, activity, pd.Series(dtype=object), ZoneInfo("UTC"), dt.datetime(2025, 7, 1))
    models.save(root / MODEL_DIR)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _login(browser, url, key):
    page = browser.new_page()
    page.goto(url + "/")
    assert page.url.endswith("/login"), "pages need a session"
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page


def test_search_to_customer_card(server, browser):
    url, keys, _, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    page = _login(browser, url, keys["agent"])
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.reload()
    assert "Campaign responses" in page.content()
    assert page.evaluate("getComputedStyle(document.querySelector('header')).display") != "inline", "stylesheet applied"
    assert page.locator("#campaigns").inner_text().count("deposit") == 1
    assert page.locator("svg.chart rect").count() > 0, "value and churn histograms are drawn server-side"
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

    page.fill("#q", "Петр")
    page.press("#q", "Enter")
    page.wait_for_selector("#results")
    assert page.locator("#results tbody tr").count() == 1
    page.click("a.profile-link")
    page.wait_for_selector("#card")
    assert page.locator("#customer-name").inner_text().startswith("Анна Петрова")
    attributes = page.locator("#attributes").inner_text()
    assert "crm:C1" in attributes and "1990-03-15" in attributes
    assert "anna@x.ru" in page.locator("#identifiers").inner_text()
    assert "high_value" in page.locator("#member-of").inner_text()
    assert "within 90 days" in page.locator("#churn").inner_text() and page.locator("#churn-reasons li").count() >= 1
    assert page.locator("#archetype").inner_text().split()[0] in (
        "analog",
        "wannabe",
        "mainstreamer",
        "paranoid",
        "chameleon",
        "nomad",
    )
    # the next best action, from the code of POST /v1/decisions: deposit is open, pension held back
    assert "deposit" in page.locator("#nba-candidates").inner_text()
    offer = page.locator("#nba-offer").inner_text()
    assert offer.startswith("deposit by") and "expected value" in offer and "propensity" in offer
    assert "send at" in page.locator("#nba-reasons").inner_text()
    held = page.locator("#nba-suppressed").inner_text()
    assert "pension" in held and "eligibility: not age_years >= 60" in held
    timeline = page.locator("#timeline").inner_text()
    for channel in ("pos", "call_centre", "sms", "web"):
        assert channel in timeline
    assert "reason=fees" in timeline
    page.screenshot(path=str(ARTIFACTS / "customer-agent.png"), full_page=True)
    assert not refused, f"the page's policy refused its own content: {refused}"
    page.close()


def test_analyst_sees_the_card_masked_and_unknown_customer_is_404(server, browser):
    url, keys, _, boris = server
    page = _login(browser, url, keys["analyst"])
    response = page.goto(url + "/search?q=boris")
    assert response.status == 403 and "profile id only" in page.locator(".error").inner_text()
    page.fill("#q", boris[:5])
    page.press("#q", "Enter")
    page.wait_for_selector("#results")
    page.click("a.profile-link")
    page.wait_for_selector("#card")
    assert page.locator("#customer-name").inner_text().startswith("Б*** С***")
    assert "boris@x.ru" not in page.content() and "b***" in page.locator("#identifiers").inner_text()
    assert "at_risk" in page.locator("#member-of").inner_text()
    page.screenshot(path=str(ARTIFACTS / "customer-analyst.png"), full_page=True)
    response = page.goto(url + "/customers/P-unknown")
    assert response.status == 404 and "no profile" in page.locator(".error").inner_text()
    page.click("#logout")
    page.wait_for_url(url + "/login")
    page.goto(url + "/segments")
    assert page.url.endswith("/login")
    page.fill("#key", "cx360_nope_nope")
    page.click("button[type=submit]")
    assert "unknown API key" in page.locator(".error").inner_text()
    page.close()


def test_calls_page_and_the_agent_summary_on_the_card(server, browser):
    url, keys, _, _ = server
    page = _login(browser, url, keys["agent"])
    page.click("nav a[href='/calls']")
    page.wait_for_selector("#by-reason")
    assert page.locator("#by-reason tbody tr").first.inner_text().split()[:2] == ["fees", "1"]
    page.goto(url + "/search?q=Петр")
    page.click("a.profile-link")
    page.wait_for_selector("#agent-summary")
    assert "fees" in page.locator("#last-calls").inner_text() and page.locator("#repeat-contact").count() == 0
    page.screenshot(path=str(ARTIFACTS / "customer-agent-summary.png"), full_page=True)
    page.close()
    page = _login(browser, url, keys["analyst"])
    page.goto(url + "/calls")
    assert "fewer than 5 people" in page.locator("#pooled").inner_text()  # one caller: pooled, not shown
    assert page.locator("#by-reason tbody tr").count() == 0
    page.close()


def test_dashboard_reads_are_audited(server):
    from cx360.api.audit import read_audit

    _, _, root, _ = server
    deadline = time.monotonic() + 5  # the server writes its audit batches every half second
    while not (entries := [e for e in read_audit(root) if e["action"] == "dashboard"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert {e["key_name"] for e in entries if e["profile_id"]} == {"ui-agent"}, "the analyst saw masked data only"
    missed = [e for e in entries if not e["profile_id"]]
    assert [(e["key_name"], e["fields"]) for e in missed] == [("ui-analyst", "query.identifier")], (
        "a miss is a lookup too"
    )
    read = next(e for e in entries if e["profile_id"])
    assert "attributes.last_name" in read["fields"].split(",") and read["client"] == "127.0.0.1"


def test_api_docs_render_offline(server, browser):
    """Swagger UI and ReDoc come from installed assets: with every request off 127.0.0.1 refused,
    /docs still lists the operations and offers the bearer Authorize dialog."""
    url = server[0]
    page = browser.new_page()
    outside = []

    def only_local(route):
        if route.request.url.startswith(url):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", only_local)
    page.goto(url + "/docs")
    page.wait_for_selector(".opblock-summary", timeout=20000)
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/v1/profiles", "/v1/profiles/{profile_id}", "/v1/search", "/v1/segments"} <= {
        o.replace("\u200b", "") for o in operations
    }
    page.click("button.authorize")
    assert "HTTPBearer" in page.locator(".auth-container").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"))
    page.goto(url + "/redoc")
    page.wait_for_selector("h2:has-text('Find a profile by an identifier')", timeout=20000)
    assert not outside, outside
    page.close()
