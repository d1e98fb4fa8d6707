"""A right-to-left HTML page of extracted records: entities highlighted, relations listed.

Every piece of text is escaped: the page shows what the articles say, it never runs it.
"""

from __future__ import annotations

from html import escape

__all__ = ["render_html"]

_STYLE = """
body{font-family:"Noto Naskh Arabic","Amiri","Segoe UI",Tahoma,sans-serif;line-height:2;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
article{border-bottom:1px solid #ddd;padding:1rem 0}
h2{font-size:1rem;color:#666;direction:ltr;text-align:left}
mark{border-radius:.3rem;padding:0 .2rem}
mark.ACTOR{background:#ffd6a5}mark.LOCATION{background:#bde0fe}mark.CASUALTY{background:#ffadad}
mark sub{font-size:.6rem;color:#555;margin-inline-start:.2rem}
ul{font-size:.95rem}.error{color:#b00}.legend mark{margin-inline-end:.5rem}
"""


def _entity_html(ent: dict, text: str) -> str:
    extra = ""
    if ent["label"] == "CASUALTY" and ent.get("count") is not None:
        extra = f" = {ent['count']}"
    title = f"{ent['label']}{extra}" + (f" ({ent['score']:.2f})" if isinstance(ent.get("score"), float) else "")
    return (f'<mark class="{escape(ent["label"])}" title="{escape(title)}">{escape(text[ent["start"]:ent["end"]])}'
            f"<sub>{escape(ent['label'])}{escape(extra)}</sub></mark>")


def render_html(records: list[dict], title: str = "marsad") -> str:
    """One page for all records, ``dir="rtl"``, ``lang="ar"``."""
    parts = [
        "<!DOCTYPE html>", '<html lang="ar" dir="rtl">', "<head>", '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
        f"<h1>{escape(title)}</h1>",
        '<p class="legend"><mark class="ACTOR">ACTOR</mark><mark class="LOCATION">LOCATION</mark>'
        '<mark class="CASUALTY">CASUALTY</mark></p>',
    ]
    for r in records:
        parts.append("<article>")
        parts.append(f"<h2>{escape(str(r.get('id', '')))}</h2>")
        if r.get("error"):
            parts.append(f'<p class="error">{escape(str(r["error"]))}</p></article>')
            continue
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
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
