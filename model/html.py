"""A right-to-left HTML report of extracted records: a map and a sortable table of the events,
then each article with its entities highlighted and its relations listed.

Every piece of text is escaped: the page shows what the articles say, it never runs it. The map
is drawn twice: a plain SVG of the points by longitude and latitude (in the page, so it works
offline), and a Leaflet map with OpenStreetMap tiles that the *reader's* browser loads (pinned by
Subresource Integrity); the SVG is hidden only once a tile has loaded.
"""

from __future__ import annotations

import json
import math
from html import escape

__all__ = ["render_html", "render_record", "page_head", "render_events_section", "events_table_html", "svg_map",
           "leaflet_head", "report_script", "EVENT_COLUMNS"]

LEAFLET_CSS = ("https://unpkg.com/leaflet@1.9.4/dist/leaflet.css", "sha256-p4NxAoJBhIIN+hmNHrzRCf9tD/miZyoHS5obTRR9BMY=")
LEAFLET_JS = ("https://unpkg.com/leaflet@1.9.4/dist/leaflet.js", "sha256-20nQCchB9co0qIjJZRGuk2/Z9VM+kNiyxNV1lvTlZBo=")
# (heading, event field, numeric)
EVENT_COLUMNS = (
    ("#", "n", True), ("التاريخ date", "event_date", False), ("النوع type", "event_type", False),
    ("sub-type", "sub_event_type", False), ("actor1", "actor1", False), ("actor2", "actor2", False),
    ("المكان location", "location", False), ("place", "name_en", False), ("country", "country", False),
    ("lat", "lat", True), ("lon", "lon", True), ("fatalities", "fatalities", True), ("injured", "injured", True),
    ("confidence", "confidence", True), ("record", "record_id", False),
)
SVG_W, SVG_H = 800, 420

_STYLE = """
body{font-family:"Noto Naskh Arabic","Amiri","Segoe UI",Tahoma,sans-serif;line-height:2;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
article{border-bottom:1px solid #ddd;padding:1rem 0}
h2{font-size:1rem;color:#666;direction:ltr;text-align:left}
mark{border-radius:.3rem;padding:0 .2rem}
mark.ACTOR{background:#ffd6a5}mark.LOCATION{background:#bde0fe}mark.CASUALTY{background:#ffadad}
mark sub{font-size:.6rem;color:#555;margin-inline-start:.2rem}
ul{font-size:.95rem}.error{color:#b00}.legend mark{margin-inline-end:.5rem}
#events table{border-collapse:collapse;width:100%;font-size:.85rem;line-height:1.4}
#events th,#events td{border:1px solid #ddd;padding:.2rem .4rem;vertical-align:top}
#events th{background:#f3f3f3;cursor:pointer;user-select:none}#events th.asc::after{content:" ▲"}#events th.desc::after{content:" ▼"}
#events td.num{direction:ltr;text-align:right}#map{height:420px;margin:.5rem 0}
svg.fallback{width:100%;max-width:800px;height:auto;background:#eef4f8;border:1px solid #ccd;direction:ltr}
svg.fallback circle{fill:#c0392b;fill-opacity:.75;stroke:#fff}svg.fallback text{font-size:11px;fill:#333}
"""
_SCRIPT = """
(function(){
  function key(td, num){ var v = td.getAttribute('data-sort'); if (num) { var f = parseFloat(v); return isNaN(f) ? -Infinity : f; } return v || ''; }
  document.querySelectorAll('#events-table th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var table = th.closest('table'), body = table.tBodies[0], num = th.getAttribute('data-num') === '1';
      var asc = !th.classList.contains('asc');
      table.querySelectorAll('th').forEach(function(h){ h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function(a, b){ var x = key(a.cells[col], num), y = key(b.cells[col], num);
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
  window.addEventListener('load', function(){
    var pts = JSON.parse(document.getElementById('event-points').textContent);
    if (!window.L || !pts.length) return;
    var div = document.getElementById('map'); div.hidden = false;
    var map = L.map(div), group = [];
    L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {maxZoom: 18,
      attribution: '&copy; OpenStreetMap contributors'}).once('tileload', function(){
        document.getElementById('map-fallback').style.display = 'none'; }).addTo(map);
    pts.forEach(function(p){ var m = L.marker([p[0], p[1]]).bindPopup(document.createTextNode(p[2])).addTo(map); group.push(m); });
    map.fitBounds(L.featureGroup(group).getBounds().pad(0.3), {maxZoom: 9});
  });
})();
"""


def _entity_html(ent: dict, text: str) -> str:
    extra = ""
    if ent["label"] == "CASUALTY" and ent.get("count") is not None:
        extra = f" = {ent['count']}"
    title = f"{ent['label']}{extra}" + (f" ({ent['score']:.2f})" if isinstance(ent.get("score"), float) else "")
    return (f'<mark class="{escape(ent["label"])}" title="{escape(title)}">{escape(text[ent["start"]:ent["end"]])}'
            f"<sub>{escape(ent['label'])}{escape(extra)}</sub></mark>")


def page_head(title: str, style: str = "", head_extra: str = "") -> list[str]:
    """The lines that open a page (``dir="rtl"``, ``lang="ar"``): head, style (plus ``style``),
    ``head_extra`` (e.g. :func:`leaflet_head`), title and the colour legend; :func:`render_html`
    and ``marsad serve``'s page share them."""
    return [
        "<!DOCTYPE html>", '<html lang="ar" dir="rtl">', "<head>", '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>", f"<style>{_STYLE}{style}</style>", *([head_extra] if head_extra else []),
        "</head>", "<body>",
        f"<h1>{escape(title)}</h1>",
        '<p class="legend"><mark class="ACTOR">ACTOR</mark><mark class="LOCATION">LOCATION</mark>'
        '<mark class="CASUALTY">CASUALTY</mark></p>',
    ]


def render_record(r: dict) -> str:
    """One record as an ``<article>``: its id, the text with entities highlighted, the relations."""
    parts = ["<article>", f"<h2>{escape(str(r.get('id', '')))}</h2>"]
    if r.get("error"):
        parts.append(f'<p class="error">{escape(str(r["error"]))}</p></article>')
        return "\n".join(parts)
    text = r.get("text") or ""
    out, pos = [], 0
    for ent in sorted(r.get("entities", []), key=lambda e: e["start"]):
        out.append(escape(text[pos:ent["start"]]))
        out.append(_entity_html(ent, text))
        pos = ent["end"]
    out.append(escape(text[pos:]))
    body = "".join(out).replace("\n", "<br>\n")
    parts.append(f"<p>{body}</p>")
    ents = r.get("entities", [])
    if r.get("relations"):
        parts.append("<ul>")
        for rel in r["relations"]:
            h, t = ents[rel["head"]], ents[rel["tail"]]
            parts.append(f"<li>{escape(h['text'])} ← <b>{escape(rel['label'])}</b> → {escape(t['text'])}</li>")
        parts.append("</ul>")
    parts.append("</article>")
    return "\n".join(parts)


# --- the events: table, maps -----------------------------------------------------------------
def leaflet_head() -> str:
    """Leaflet's stylesheet and script, fetched by the reader's browser (SRI-pinned, deferred)."""
    return (f'<link rel="stylesheet" href="{LEAFLET_CSS[0]}" integrity="{LEAFLET_CSS[1]}" crossorigin="">\n'
            f'<script defer src="{LEAFLET_JS[0]}" integrity="{LEAFLET_JS[1]}" crossorigin=""></script>')


def report_script() -> str:
    """The page's own script: table sorting, and the Leaflet map once Leaflet has loaded."""
    return f'<script id="marsad-report">{_SCRIPT}</script>'


def _cell(ev: dict, field: str, num: bool) -> str:
    value = ev.get(field)
    shown = "" if value is None else str(value)
    cls = ' class="num"' if num else ""
    return f'<td{cls} data-sort="{escape(shown)}">{escape(shown)}</td>'


def events_table_html(events: list[dict]) -> str:
    """A sortable table of events (click a heading; :func:`report_script` sorts it)."""
    head = "".join(f'<th data-num="{int(num)}" data-field="{field}">{escape(h)}</th>' for h, field, num in EVENT_COLUMNS)
    rows = []
    for n, ev in enumerate(events, 1):
        ev = {**ev, "n": n}
        rows.append(f'<tr title="{escape(ev.get("sentence") or "")}">'
                    + "".join(_cell(ev, f, num) for _, f, num in EVENT_COLUMNS) + "</tr>")
    return f'<table id="events-table"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(rows) + "\n</tbody></table>"


def _placed(ev: dict) -> bool:
    return isinstance(ev.get("lat"), (int, float)) and isinstance(ev.get("lon"), (int, float))


def svg_map(events: list[dict]) -> str:
    """The offline map: the events' points by longitude and latitude (north up, longitude shrunk
    by cos(latitude)), each place named once; no tiles, no script."""
    pts = [(n, ev) for n, ev in enumerate(events, 1) if _placed(ev)]
    if not pts:
        return '<p class="nomap">لا أماكن على الخريطة (no placed events)</p>'
    lats, lons = [ev["lat"] for _, ev in pts], [ev["lon"] for _, ev in pts]
    k = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span = max(max(lats) - min(lats), (max(lons) - min(lons)) * k, 1.0) * 1.3
    clat, clon, scale = (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2, min(SVG_W, SVG_H) / span
    out = [f'<svg id="map-fallback" class="fallback" viewBox="0 0 {SVG_W} {SVG_H}" role="img" '
           'aria-label="events by longitude and latitude">']
    named = set()
    for n, ev in pts:
        x, y = SVG_W / 2 + (ev["lon"] - clon) * k * scale, SVG_H / 2 - (ev["lat"] - clat) * scale
        label = ev.get("name_en") or ev.get("location") or ""
        tip = f"{n}. {ev.get('location') or ''} ({label}): {ev.get('event_type') or ''}"
        out.append(f'<circle class="event-point" data-event="{n}" cx="{x:.1f}" cy="{y:.1f}" r="6">'
                   f"<title>{escape(tip)}</title></circle>")
        if label not in named:
            named.add(label)
            out.append(f'<text x="{x + 8:.1f}" y="{y + 4:.1f}">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _points_json(events: list[dict]) -> str:
    """The map's points as JSON that is safe inside a script element."""
    pts = [[ev["lat"], ev["lon"], f"{ev.get('location') or ''} ({ev.get('name_en') or ''}): {ev.get('event_type') or ''}"]
           for ev in events if _placed(ev)]
    text = json.dumps(pts, ensure_ascii=False)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(a, b)
    return text


def render_events_section(events: list[dict]) -> str:
    """The report's top: the Leaflet map holder, the SVG fallback, the events table, the points."""
    placed = sum(1 for ev in events if _placed(ev))
    return "\n".join([
        '<section id="events">', f"<h2>الأحداث events: {len(events)} ({placed} on the map)</h2>",
        '<div id="map" hidden></div>', svg_map(events),
        events_table_html(events) if events else '<p class="noevents">لا أحداث (no events)</p>',
        f'<script type="application/json" id="event-points">{_points_json(events)}</script>', "</section>",
    ])


def _record_events(records: list[dict], geocoder) -> list[dict]:
    """The events of every good record; a record whose events cannot be built is left out of the table."""
    from .events import events_from_record

    events = []
    for r in records:
        if r.get("error"):
            continue
        try:
            events += events_from_record(r, r.get("id"), geocoder=geocoder)
        except (ValueError, KeyError, IndexError, TypeError):
            continue  # a malformed record still gets its article below
    return events


def render_html(records: list[dict], title: str = "marsad", geocoder="default") -> str:
    """One page for all records, ``dir="rtl"``, ``lang="ar"``: the events (map and table), then the
    articles. ``geocoder`` as in :func:`~.events.events_from_record` (None: no coordinates)."""
    parts = page_head(title, head_extra=leaflet_head()) + [render_events_section(_record_events(records, geocoder))]
    parts += [render_record(r) for r in records]
    parts += [report_script(), "</body>", "</html>", ""]
    return "\n".join(parts)
