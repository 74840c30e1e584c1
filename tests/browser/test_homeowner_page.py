"""Headless Chromium opens the homeowner page, answers a request with a click, and the answer
is in the database.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``) and ``selenium``; skips with that message when they are missing.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from api_factories import T0, TOKENS, api_settings, preset_spec, seed_home
from live_server import live_server
from sqlalchemy import select

from atlas.alerts import FLAPPER, Alert
from service.api.app import create_app
from service.storage.alerts import insert_alert, list_alerts
from service.storage.schema import label_requests, labels

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="headless Chromium missing: apt-get install -y chromium chromium-driver",
    ),
    pytest.mark.slow,
]


#: The service's time: five days after the seeded requests were sent.
LATER = T0 + timedelta(days=5, hours=4)


@pytest.fixture
def server(sqlite_engine, uid: str):
    """uvicorn on a free 127.0.0.1 port serving two seeded homes; yields (base url, homes)."""
    a = seed_home(sqlite_engine, preset_spec("two_bath_house", f"ha-{uid}"))
    b = seed_home(sqlite_engine, preset_spec("apartment", f"hb-{uid}"))
    settings = api_settings(a["home_id"], b["home_id"])
    app = create_app(settings, db=sqlite_engine, clock=lambda: LATER)
    with live_server(app) as url:
        yield url, a


@pytest.fixture
def browser(tmp_path: Path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.mark.timeout(90)
def test_click_answers_request_and_it_is_recorded(server, browser, sqlite_engine) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, home = server
    request_id, choice = home["requests"][0], home["choices"][0]
    browser.get(f"{base}/homes/{home['home_id']}?token={TOKENS['owner_a']}")
    assert "?token" not in browser.current_url  # the token moved into an HttpOnly cookie
    card = browser.find_element(By.ID, f"req-{request_id}")
    button = next(
        b
        for b in card.find_elements(By.TAG_NAME, "button")
        if f'"{choice}"' in b.get_attribute("data-body")
    )
    button.click()
    WebDriverWait(browser, 10).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"#req-{request_id} .msg"), "Thanks")
    )
    with sqlite_engine.connect() as conn:
        label = conn.execute(select(labels).where(labels.c.request_id == request_id)).one()
        state = conn.execute(
            select(label_requests.c.state).where(label_requests.c.request_id == request_id)
        ).scalar_one()
    assert (label.label, label.source, state) == (choice, "active", "answered")


@pytest.mark.timeout(60)
def test_a_request_sent_days_ago_says_how_many(server, browser) -> None:
    from selenium.webdriver.common.by import By

    base, home = server
    browser.get(f"{base}/homes/{home['home_id']}?token={TOKENS['owner_a']}")
    card = browser.find_element(By.ID, f"req-{home['requests'][0]}")
    assert "5 days ago at " in card.text and "Yesterday" not in card.text


@pytest.mark.timeout(60)
def test_this_weeks_water_is_drawn_as_bars(server, browser) -> None:
    """The breakdown renders under the page's CSP: a bar per group with its name, the
    low-confidence and unclassified ones too (empty here)."""
    from selenium.webdriver.common.by import By

    base, home = server
    browser.get(f"{base}/homes/{home['home_id']}?token={TOKENS['owner_a']}")
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.water g.water-bar")
    groups = [b.get_attribute("data-group") for b in bars]
    assert groups == ["kitchen_faucet", "low_confidence", "unclassified"]
    chart = browser.find_element(By.CSS_SELECTOR, "svg.water")
    assert chart.size["width"] > 200 and chart.size["height"] > 60
    names = [t.text for t in chart.find_elements(By.CSS_SELECTOR, "g.water-bar > text")]
    assert names[0::2] == ["Kitchen faucet", "Low confidence", "Unclassified"]
    assert names[1].endswith("L · 6 uses") and names[3] == names[5] == "0 L · 0 uses"
    seeded = bars[0].find_element(By.CSS_SELECTOR, "rect.bar")
    assert seeded.size["width"] > 100  # drawn, with the litres of the seeded uses


@pytest.mark.timeout(60)
def test_an_alert_is_shown_first_and_acknowledged_with_a_click(
    server, browser, sqlite_engine
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, home = server
    leak = Alert(
        FLAPPER,
        LATER - timedelta(hours=2),
        ("u-1", "u-2", "u-3", "u-4"),
        {"toilet": "bath1-toilet", "refills": 4, "median_interval_min": 20.0},
        "bath1-toilet: 4 short refills without a flush, every ~20 min",
    )
    with sqlite_engine.begin() as conn:
        stored = insert_alert(conn, home["home_id"], leak, LATER)
    browser.get(f"{base}/homes/{home['home_id']}?token={TOKENS['owner_a']}")
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headings[0] == "Alerts (1)"  # before the questions: water may be running now
    card = browser.find_element(By.ID, f"alert-{stored.alert_id}")
    assert "A toilet may be leaking" in card.text and "every ~20 min" in card.text
    card.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 10).until(
        ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, f"#alert-{stored.alert_id} .msg"), "marked as seen"
        )
    )
    with sqlite_engine.connect() as conn:
        assert list_alerts(conn, home["home_id"], only_open=True) == []
    browser.refresh()
    assert "Alerts (" not in browser.find_element(By.TAG_NAME, "body").text
