"""Server-rendered HTML for the homeowner and dashboard pages: no build step, no CDN.

Everything a page needs (CSS, the small script, the SVG chart) is inline, so a phone on the
home's Wi-Fi needs nothing but this server. Every interpolated value goes through
:func:`html.escape`; the script gets data only from escaped ``data-`` attributes and runs under
a per-response CSP nonce.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from service.api.schemas.accuracy import AccuracyHistoryPublic
from service.api.schemas.alerts import AlertPublic
from service.api.schemas.checklist import ChecklistPublic
from service.api.schemas.homes import HomePublic
from service.api.schemas.label_requests import LabelRequestPublic
from service.api.schemas.usage import UsageGroupPublic, UsagePublic

CSS = """
*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;padding:1rem;
max-width:42rem;margin:auto;background:#f6f7f9;color:#1b1f24;line-height:1.4}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}
.card{background:#fff;border-radius:12px;padding:1rem;margin:.8rem 0;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
.choices{display:grid;gap:.6rem;margin-top:.8rem}
button{font-size:1.1rem;padding:1rem;border-radius:10px;border:0;background:#1f6feb;color:#fff;
width:100%;min-height:3.2rem;cursor:pointer}button.secondary{background:#57606a}
button:disabled{opacity:.5}.done{color:#1a7f37;font-weight:600}.muted{color:#57606a}
.err{color:#cf222e}table{border-collapse:collapse;width:100%}td,th{text-align:left;
padding:.3rem;border-bottom:1px solid #d0d7de}svg{width:100%;height:auto;background:#fff}
svg.water{max-width:30rem;display:block}.alert{border-left:6px solid #cf222e}
"""

SCRIPT = """
document.querySelectorAll('[data-post]').forEach(function (btn) {
  btn.addEventListener('click', function () {
    var card = btn.closest('.card'); var msg = card.querySelector('.msg');
    card.querySelectorAll('button').forEach(function (b) { b.disabled = true; });
    fetch(btn.dataset.post, {method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-Atlas-Page': '1'},
      body: btn.dataset.body}).then(function (r) {
        return r.json().then(function (j) { return [r.status, j]; });
      }).then(function (res) {
        if (res[0] < 300) { msg.className = 'msg done'; msg.textContent = btn.dataset.ok; }
        else { msg.className = 'msg err'; msg.textContent = res[1].detail || 'Error';
               card.querySelectorAll('button').forEach(function (b) { b.disabled = false; }); }
      }).catch(function () { msg.className = 'msg err'; msg.textContent = 'Network error';
               card.querySelectorAll('button').forEach(function (b) { b.disabled = false; }); });
  });
});
"""

LEVEL_COLOURS = {
    "rules": "#8c959f",
    "category": "#bf8700",
    "fixture": "#1f6feb",
    "valve": "#1a7f37",
}


#: Bar colours by the usage endpoint's group kind.
WATER_COLOURS = {
    "named": "#1f6feb",
    "lump": "#8250df",
    "low_confidence": "#bf8700",
    "unclassified": "#8c959f",
}
#: Groups every breakdown shows, with or without uses: the water not (confidently) placed.
WATER_UNPLACED = {"low_confidence": "Low confidence", "unclassified": "Unclassified"}
_GROUPING_WORDS = {
    "rule_categories": "category (week 1: only washing machine, dishwasher and shower are named "
    "yet)",
    "category": "category",
    "fixture": "fixture",
    "valve": "valve",
}


def _page(title: str, body: str, nonce: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style nonce='{nonce}'>{CSS}</style></head>"
        f"<body>{body}<script nonce='{nonce}'>{SCRIPT}</script></body></html>"
    )


def _when(t: datetime | None) -> str:
    return "" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")


def _local_when(t: datetime | None, tz: ZoneInfo) -> str:
    """A moment as the homeowner's clock shows it: the home's time zone, weekday and date."""
    return "" if t is None else t.astimezone(tz).strftime("%a %d %b %H:%M")


def _request_card(home_id: str, req: LabelRequestPublic, tz: ZoneInfo) -> str:
    url = f"/v1/homes/{home_id}/label-requests/{req.request_id}/answer"
    buttons = "".join(
        f"<button data-post='{escape(url)}' "
        f"data-body='{escape(_json_choice(c.value))}' "
        f"data-ok='{escape('Thanks! Recorded: ' + c.text)}'"
        f"{' class=secondary' if c.value == 'not sure' else ''}>{escape(c.text)}</button>"
        for c in req.choices
    )
    return (
        f"<div class='card' id='req-{escape(req.request_id)}'>"
        f"<p>{escape(req.prompt)}</p>"
        f"<p class='muted'>Answer by {_local_when(req.expires_at, tz)}</p>"
        f"<div class='choices'>{buttons}</div><p class='msg' aria-live='polite'></p></div>"
    )


def _json_choice(value: str) -> str:
    return json.dumps({"choice": value})


def _litres(value: float, sigma: float) -> str:
    """``value ± sigma`` to whole litres from 10 L, to a tenth below (just ``value`` when sigma
    is 0)."""
    digits = 0 if value >= 10 or value == 0 else 1
    if sigma <= 0:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {sigma:.{digits}f}"


def _uses(n: int) -> str:
    return f"{n} use" if n == 1 else f"{n} uses"


def water_chart(water: UsagePublic | None, width: int = 360) -> str:
    """This week's water per group (``GET /v1/homes/{id}/usage`` over the week) as horizontal
    bars in inline SVG: litres, with a whisker of one standard deviation either way. Named groups
    and lumps by litres, then low-confidence and unclassified uses, whose bars are always shown
    (0 L when there are none)."""
    if water is None:
        return "<p class='muted'>No water counted this week yet.</p>"
    groups = sorted(
        (g for g in water.totals if g.kind not in WATER_UNPLACED), key=lambda g: (-g.litres, g.text)
    )
    present = {g.kind: g for g in water.totals if g.kind in WATER_UNPLACED}
    none = {"count": 0, "minutes": 0.0, "litres": 0.0, "litres_sigma": 0.0, "unsized": 0}
    for kind, text in WATER_UNPLACED.items():
        groups.append(
            present.get(kind) or UsageGroupPublic(group=kind, text=text, kind=kind, **none)
        )
    label_h, bar_h, gap, pad_l, pad_r = 17, 14, 9, 2, 6
    row_h = label_h + bar_h + gap
    top = max((g.litres + g.litres_sigma for g in groups), default=0.0) or 1.0

    def x(v: float) -> float:
        return pad_l + max(v, 0.0) / top * (width - pad_l - pad_r)

    summary = f"{_litres(water.litres, water.litres_sigma)} litres in {_uses(water.count)}"
    grouping = escape(_GROUPING_WORDS.get(water.group, water.group))
    parts = [
        f"<svg class='water' viewBox='0 0 {width} {row_h * len(groups) + 4}' role='img' "
        f"aria-label='This week: {escape(summary)}, by {grouping}'>"
    ]
    for i, g in enumerate(groups):
        y = i * row_h + 2 + label_h
        value = f"{_litres(g.litres, g.litres_sigma)} L · {_uses(g.count)}"
        parts.append(
            f"<g class='water-bar' data-group='{escape(g.group)}' data-kind='{g.kind}' "
            f"data-litres='{g.litres}'><title>{escape(g.text)}: {escape(value)}</title>"
            f"<text x='{pad_l}' y='{y - 4}' font-size='13'>{escape(g.text)}</text>"
            f"<rect class='bar' x='{pad_l}' y='{y}' width='{max(x(g.litres) - pad_l, 1):.1f}' "
            f"height='{bar_h}' fill='{WATER_COLOURS[g.kind]}'/>"
        )
        lo, hi, mid = x(g.litres - g.litres_sigma), x(g.litres + g.litres_sigma), y + bar_h / 2
        if g.litres_sigma > 0:
            parts.append(
                f"<path class='sigma' d='M{lo:.1f} {mid - 4:.1f}v8M{lo:.1f} {mid:.1f}"
                f"H{hi:.1f}M{hi:.1f} {mid - 4:.1f}v8' stroke='#1b1f24' fill='none'/>"
            )
        parts.append(
            f"<text x='{width - 2}' y='{y - 4}' font-size='12' text-anchor='end'>"
            f"{escape(value)}</text></g>"
        )
    parts.append("</svg>")
    unsized = sum(g.unsized for g in water.totals)
    note = f" {_uses(unsized)} without litres (still running or unpaired)." if unsized else ""
    return (
        f"<div class='card'><p class='muted'>Since Monday, by {grouping}: <b>{escape(summary)}"
        f"</b>. Each whisker spans one standard deviation either way.{note}</p>"
        + "".join(parts)
        + "</div>"
    )


def _alert_card(home_id: str, alert: AlertPublic, tz: ZoneInfo) -> str:
    url = f"/v1/homes/{home_id}/alerts/{alert.alert_id}/acknowledge"
    return (
        f"<div class='card alert' id='alert-{escape(alert.alert_id)}'>"
        f"<p><b>{escape(alert.title)}</b></p><p>{escape(alert.message)}</p>"
        f"<p class='muted'>{_local_when(alert.at, tz)}</p>"
        f"<button data-post='{escape(url)}' data-body='{{}}' "
        "data-ok='Thanks: marked as seen.'>I've seen it</button>"
        "<p class='msg' aria-live='polite'></p></div>"
    )


def homeowner_page(
    home: HomePublic,
    requests: list[LabelRequestPublic],
    checklist: ChecklistPublic,
    nonce: str,
    water: UsagePublic | None = None,
    alerts: list[AlertPublic] | None = None,
) -> str:
    """Open alerts first (water may be running now), then open questions with one big button
    per choice, this week's water, then the week-1 checklist."""
    tz = ZoneInfo(home.timezone)
    alert_html = (
        f"<h2>Alerts ({len(alerts)})</h2>"
        + "".join(_alert_card(home.home_id, a, tz) for a in alerts)
        if alerts
        else ""
    )
    cards = "".join(_request_card(home.home_id, r, tz) for r in requests) or (
        "<p class='muted'>No questions right now. Thank you!</p>"
    )
    items = []
    url = f"/v1/homes/{home.home_id}/announcements"
    for item in checklist.items:
        state = (
            "<span class='done'>Done</span>"
            if item.complete
            else f"<span class='muted'>{item.done} of {item.count}</span>"
        )
        body = escape(json.dumps({"valve_id": item.announce_id}))
        button = (
            ""
            if item.complete
            else f"<button data-post='{escape(url)}' data-body='{body}' "
            "data-ok='Go ahead now: we will recognise it.'>I'm about to do it</button>"
        )
        items.append(
            f"<div class='card'><p><b>{escape(item.text)}</b> {state}</p>{button}"
            "<p class='msg' aria-live='polite'></p></div>"
        )
    checklist_html = (
        f"<h2>Week-1 checklist ({checklist.n_done} of {checklist.n_required})</h2>" + "".join(items)
        if checklist.phase in (None, "week1") or not checklist.complete
        else "<h2>Week-1 checklist</h2><p class='done'>Complete. Thank you!</p>"
    )
    body = (
        f"<h1>{escape(home.name)}</h1><p class='muted'>Showing water use by "
        f"<b>{escape(home.display_level)}</b>"
        + (f" · day {home.calibration_day}" if home.calibration_day is not None else "")
        + f"</p>{alert_html}<h2>Questions ({len(requests)})</h2>{cards}"
        f"<h2>This week's water</h2>{water_chart(water)}{checklist_html}"
    )
    return _page(f"Atlas · {home.name}", body, nonce)


def accuracy_svg(history: AccuracyHistoryPublic, width: int = 640, height: int = 260) -> str:
    """Accuracy estimate (solid) and lower bound (dashed) per level over time, with the level
    timeline as a coloured band under the axis."""
    pad_l, pad_r, pad_t, pad_b = 40, 10, 10, 40
    rows = history.data
    if not rows:
        return "<p class='muted'>No accuracy estimates yet (they start with the first answers).</p>"
    t0 = min(r.t for r in rows).timestamp()
    t1 = max(r.t for r in rows).timestamp()
    span = max(t1 - t0, 1.0)

    def x(t: datetime) -> float:
        return pad_l + (t.timestamp() - t0) / span * (width - pad_l - pad_r)

    def y(v: float) -> float:
        return pad_t + (1 - v) * (height - pad_t - pad_b)

    parts = [f"<svg viewBox='0 0 {width} {height}' role='img' aria-label='accuracy over time'>"]
    for v in (0.0, 0.5, 0.85, 1.0):
        parts.append(
            f"<line x1='{pad_l}' x2='{width - pad_r}' y1='{y(v):.1f}' y2='{y(v):.1f}' "
            f"stroke='#d0d7de'/><text x='2' y='{y(v) + 4:.1f}' font-size='11'>{v:.0%}</text>"
        )
    for level in ("category", "fixture", "valve"):
        pts = [r for r in rows if r.level == level]
        if not pts:
            continue
        colour = LEVEL_COLOURS[level]
        est = " ".join(f"{x(r.t):.1f},{y(r.estimate):.1f}" for r in pts)
        low = " ".join(f"{x(r.t):.1f},{y(r.lower_bound):.1f}" for r in pts)
        parts.append(
            f"<polyline class='est-{level}' fill='none' stroke='{colour}' "
            f"stroke-width='2' points='{est}'/>"
        )
        parts.append(
            f"<polyline fill='none' stroke='{colour}' stroke-dasharray='4 3' points='{low}'/>"
        )
    band_y = height - pad_b + 12
    changes = history.timeline
    for i, change in enumerate(changes):
        end = changes[i + 1].t if i + 1 < len(changes) else max(r.t for r in rows)
        x0, x1 = x(max(change.t, min(r.t for r in rows))), x(end)
        parts.append(
            f"<rect class='band-{change.level}' x='{x0:.1f}' y='{band_y}' "
            f"width='{max(x1 - x0, 2):.1f}' height='10' fill='{LEVEL_COLOURS[change.level]}'>"
            f"<title>{change.level} from {_when(change.t)}</title></rect>"
        )
    legend_x = pad_l
    for level, colour in LEVEL_COLOURS.items():
        parts.append(
            f"<rect x='{legend_x}' y='{height - 12}' width='10' height='10' fill='{colour}'/>"
            f"<text x='{legend_x + 14}' y='{height - 3}' font-size='11'>{level}</text>"
        )
        legend_x += 90
    parts.append("</svg>")
    return "".join(parts)


def dashboard_page(
    home: HomePublic,
    history: AccuracyHistoryPublic,
    nonce: str,
    water: UsagePublic | None = None,
    *,
    confidence: float = 0.9,
) -> str:
    """Read-only: the state of one home, this week's water, accuracy over time and the level
    timeline. ``confidence``: the service's ``estimate_confidence``, which the lower bounds
    shown were computed at."""
    acc_rows = "".join(
        f"<tr><td>{a.level}</td><td>{a.estimate:.1%}</td><td>{a.lower_bound:.1%}</td>"
        f"<td>{a.n_labels}</td><td>{'shown' if a.displayed else ''}</td></tr>"
        for a in home.accuracy
    )
    timeline = "".join(f"<li>{_when(c.t)}: <b>{escape(c.level)}</b></li>" for c in history.timeline)
    b = home.label_budget
    body = (
        f"<h1>{escape(home.name)} <span class='muted'>({escape(home.home_id)})</span></h1>"
        f"<div class='card'><p>Phase <b>{escape(home.phase or 'not started')}</b>, "
        f"day {home.calibration_day if home.calibration_day is not None else '-'}; "
        f"display level <b id='level'>{escape(home.display_level)}</b></p>"
        f"<p class='muted'>{escape(str(home.level_reason.get('text', home.level_reason)))}</p>"
        f"<p>Questions asked {b.requests_sent}, answered {b.answered}, not sure {b.declined}, "
        f"expired {b.expired}, open {b.open}; week-1 labels {b.labels_guided}.</p></div>"
        f"<h2>This week's water</h2>{water_chart(water)}<h2>Accuracy over time</h2>"
        + accuracy_svg(history)
        + f"<table><tr><th>Level</th><th>Estimate</th><th>{confidence:.0%} lower bound</th>"
        + "<th>Labels</th>"
        f"<th></th></tr>{acc_rows}</table><h2>Level timeline</h2><ul>{timeline}</ul>"
    )
    return _page(f"Atlas dashboard · {home.name}", body, nonce)


def message_page(title: str, text: str, nonce: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>", nonce)
