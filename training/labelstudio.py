"""Label Studio import/export: the project's records <-> Label Studio's JSON export.

An export is a JSON list of tasks ``{"id", "data": {"text", "id"?, ...}, "annotations": [...],
"predictions": [...]}``. Each annotation/prediction has a ``result`` list of span regions
(``type: "labels"``, ``value: {"start", "end", "text", "labels"}``) and relations
(``type: "relation"``, ``from_id``/``to_id``/``direction``/``labels``). Offsets are taken as
Python code points into ``data.text``; older Label Studio front ends wrote UTF-16 code units
(an emoji counts two), and a task whose regions' own ``text`` proves that is converted and
reported. :data:`LABEL_CONFIG` is the matching labelling config.

Import is strict about meaning and lenient about selections: a span becomes the spec tokens it
touches (a selected space is dropped, a selection that cuts a word grows to the whole word,
since attached clitics belong to the span), identical duplicate regions merge, and everything
else that the project's :func:`validate_record` would reject is a :class:`DataError` naming
the task and region: :func:`import_labelstudio` raises the first, :func:`load_labelstudio` keeps
the good tasks and lists each bad one. ``export -> import`` gives back records in canonical form (entities sorted by start,
each with its ``text``) exactly: id, text, entities, relations (in order), scores and ``meta``.
"""

from __future__ import annotations

import json
import warnings
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from marsad.model.schema import ENTITY_LABELS, RELATION_TYPES
from marsad.model.text import tokenize

from .formats import DataError, read_text, validate_record

__all__ = ["LABEL_CONFIG", "LabelStudioImport", "load_labelstudio", "import_labelstudio", "export_labelstudio",
           "read_labelstudio", "write_labelstudio"]

FROM_NAME, TO_NAME = "label", "text"  # the control and object tag names of LABEL_CONFIG
LABEL_CONFIG = "\n".join(
    ["<View>", "  <Relations>"]
    + [f'    <Relation value="{r}"/>' for r in RELATION_TYPES]
    + ["  </Relations>", f'  <Labels name="{FROM_NAME}" toName="{TO_NAME}">']
    + [f'    <Label value="{e}"/>' for e in ENTITY_LABELS]
    + ["  </Labels>", f'  <Text name="{TO_NAME}" value="$text" granularity="word"/>', "</View>"]
)


def _canon(label, allowed) -> str | None:
    """``label`` as one of ``allowed``, forgiving case and spaces (``"Withdraws from"``)."""
    if label in allowed:
        return label
    key = str(label).strip().upper().replace(" ", "_")
    return key if key in allowed else None


# --- import ---------------------------------------------------------------------------------
def _load(path_or_obj) -> tuple[list, str]:
    """The task list and a ``where`` prefix for messages."""
    if isinstance(path_or_obj, (str, Path)):
        where = f"{path_or_obj}: "
        try:
            obj = json.loads(read_text(path_or_obj))
        except json.JSONDecodeError as e:
            raise DataError(f"{path_or_obj}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        except RecursionError:
            raise DataError(f"{path_or_obj}: JSON nested too deeply to be a Label Studio export; "
                            "export the project again as 'JSON'") from None
    else:
        where, obj = "", path_or_obj
    if isinstance(obj, dict) and "data" in obj:
        obj = [obj]
    if not isinstance(obj, list):
        raise DataError(f"{where}expected a JSON list of tasks (Label Studio's 'JSON' export), "
                        f"got {type(obj).__name__}")
    return obj, where


def _by(annotation: dict, annotator: str) -> bool:
    """Whether ``completed_by`` (a user id, or a user object in older exports) is ``annotator``."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return annotator in (str(who.get("id")), who.get("email"))
    return annotator == str(who)


def _pick(task: dict, annotator: str | None, use_predictions: bool) -> list | None:
    """The ``result`` to import from a task, or None when it has none to give."""
    anns = [a for a in task.get("annotations", task.get("completions")) or []
            if isinstance(a, dict) and not a.get("was_cancelled")]
    if annotator is not None:
        anns = [a for a in anns if _by(a, annotator)]
    if anns:
        return anns[0].get("result") or []
    preds = [p for p in task.get("predictions") or [] if isinstance(p, dict)] if use_predictions else []
    return (preds[0].get("result") or []) if preds else None


def _utf16_map(text: str, result: list) -> dict[int, int] | None:
    """UTF-16 offset -> code-point offset for ``text`` when a region's own ``text`` proves that the
    task's offsets are UTF-16 code units (it matches there, not at the code points); else None."""
    if text.isascii() or all(ord(c) <= 0xFFFF for c in text):
        return None  # no character outside the BMP: both units agree
    to_cp, u = {}, 0
    for i, ch in enumerate(text):
        to_cp[u] = i
        u += 2 if ord(ch) > 0xFFFF else 1
    to_cp[u] = len(text)
    for r in result:
        v = r.get("value") or {}
        s, e, said = v.get("start"), v.get("end"), v.get("text")
        if r.get("type") == "labels" and isinstance(said, str) and isinstance(s, int) and isinstance(e, int):
            if text[s:e] != said and s in to_cp and e in to_cp and text[to_cp[s]:to_cp[e]] == said:
                return to_cp
    return None


def _task_to_record(task: dict, result: list, tid, where: str, notes: list | None = None) -> dict:
    data = task["data"]
    text = data.get("text")
    if not isinstance(text, str):
        raise DataError(f"{where}: data has no 'text' string (it has {', '.join(map(repr, data)) or 'nothing'}); "
                        "the labelling config must read the text from $text")
    utf16 = _utf16_map(text, result)
    if utf16 is not None and notes is not None:
        notes.append(f"{where}: offsets were UTF-16 code units (an older Label Studio front end); converted to code points")
    tokens = tokenize(text)
    t_starts, t_ends = [t.start for t in tokens], [t.end for t in tokens]
    regions: dict = {}  # region id -> (start, end, label)
    scores: dict = {}  # (start, end, label) -> score of its first region
    relations = []
    for k, r in enumerate(result):
        kind = r.get("type") or ""
        if kind == "relation":
            relations.append(r)
        elif kind == "labels":
            v, rid = r.get("value") or {}, r.get("id", f"#{k}")
            s, e, labels = v.get("start"), v.get("end"), v.get("labels") or []
            if utf16 is not None:
                s, e = utf16.get(s, s), utf16.get(e, e)
            if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text)):
                raise DataError(f"{where}: region {rid} has offsets {s!r}, {e!r}; the text has {len(text)} characters")
            if "text" in v and v["text"] != text[s:e]:
                raise DataError(f"{where}: region {rid} [{s}, {e}) says {v['text']!r} but data.text has "
                                f"{text[s:e]!r} there; the offsets must be code points into data.text")
            if len(labels) != 1:
                raise DataError(f"{where}: region {rid} {text[s:e]!r} has {len(labels)} labels; give it exactly one")
            label = _canon(labels[0], ENTITY_LABELS)
            if label is None:
                raise DataError(f"{where}: region {rid} {text[s:e]!r} has label {labels[0]!r}, which is not one of "
                                f"{', '.join(ENTITY_LABELS)}; relabel it (see LABEL_CONFIG)")
            first, last = bisect_right(t_ends, s), bisect_left(t_starts, e) - 1  # the tokens it touches
            if first > last:
                raise DataError(f"{where}: region {rid} [{s}, {e}) selects only white space; delete it")
            key = (t_starts[first], t_ends[last], label)
            regions[rid] = key
            if "score" in r:
                scores.setdefault(key, r["score"])
        elif kind.endswith("labels"):
            raise DataError(f"{where}: region type {kind!r} is not supported; label the text with a <Text> tag")
    keys = sorted(set(regions.values()))
    index = {key: i for i, key in enumerate(keys)}
    entities = [{"start": s, "end": e, "label": lab, "text": text[s:e]} for s, e, lab in keys]
    for key, score in scores.items():
        entities[index[key]]["score"] = score
    rels = []
    for r in relations:
        a, b, direction, labels = r.get("from_id"), r.get("to_id"), r.get("direction", "right"), r.get("labels") or []
        what = f"relation {a} -> {b}"
        if a not in regions or b not in regions:
            raise DataError(f"{where}: {what} links a region that is not a labelled span; delete the relation")
        if direction == "left":
            a, b = b, a
        elif direction != "right":
            raise DataError(f"{where}: {what} has direction {direction!r}; relations go from head to tail, "
                            "so set it to 'right' (or 'left') in Label Studio")
        if len(labels) != 1:
            raise DataError(f"{where}: {what} has {'no label' if not labels else 'several labels'}; "
                            f"give it exactly one of {', '.join(RELATION_TYPES)} or delete it")
        label = _canon(labels[0], RELATION_TYPES)
        if label is None:
            raise DataError(f"{where}: {what} has label {labels[0]!r}, which is not one of "
                            f"{', '.join(RELATION_TYPES)}; relabel it (see LABEL_CONFIG)")
        rel = {"head": index[regions[a]], "tail": index[regions[b]], "label": label}
        if "score" in r:
            rel["score"] = r["score"]
        rels.append(rel)
    record = {"id": data["id"] if data.get("id") is not None else f"ls-{tid}", "text": text,
              "entities": entities, "relations": rels}
    meta = {k: v for k, v in data.items() if k not in ("text", "id")}
    if meta:
        record["meta"] = meta
    problems = validate_record(record)
    if problems:
        raise DataError(f"{where} ({record['id']}): " + "; ".join(p.message for p in problems))
    return record


@dataclass
class LabelStudioImport:
    """What :func:`load_labelstudio` read: the good tasks' records, one message per bad task
    (naming the task and region), and notes on what was repaired (UTF-16 offsets)."""

    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_labelstudio(path_or_obj, *, annotator: str | None = None, use_predictions: bool = False) -> LabelStudioImport:
    """Records from a Label Studio JSON export (a file path, or the parsed list of tasks); a bad
    task never takes the good ones with it.

    Each task gives its first annotation that is not cancelled (only ``annotator``'s, matched
    against ``completed_by`` id or email, when given); failing that, its first prediction
    when ``use_predictions``. Tasks with neither are skipped with a warning. The record id is
    ``data.id`` or ``ls-<task id>``; the other ``data`` fields become ``meta``. A file that is
    not an export at all raises :class:`DataError`.
    """
    tasks, where = _load(path_or_obj)
    out, skipped = LabelStudioImport(), []
    for n, task in enumerate(tasks):
        tid = task.get("id", n + 1) if isinstance(task, dict) else n + 1
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            out.problems.append(f"{where}task {tid}: not a Label Studio task (no 'data' object); "
                                "export with the 'JSON' format, not 'JSON-MIN' or 'CSV'")
            continue
        result = _pick(task, annotator, use_predictions)
        if result is None:
            skipped.append(str(tid))
            continue
        try:
            out.records.append(_task_to_record(task, result, tid, f"{where}task {tid}", out.notes))
        except DataError as e:
            out.problems.append(str(e))
    if skipped:
        hint = "" if use_predictions else "; use_predictions=True takes model predictions for them"
        warnings.warn(f"{where}skipped {len(skipped)} of {len(tasks)} tasks with no usable annotation "
                      f"(task {', '.join(skipped[:10])}{', ...' if len(skipped) > 10 else ''}){hint}", stacklevel=3)
    return out


def import_labelstudio(path_or_obj, *, annotator: str | None = None, use_predictions: bool = False) -> list[dict]:
    """The records of a Label Studio export (see :func:`load_labelstudio`); the first bad task
    raises :class:`DataError`."""
    loaded = load_labelstudio(path_or_obj, annotator=annotator, use_predictions=use_predictions)
    if loaded.problems:
        raise DataError(loaded.problems[0] + (f" (and {len(loaded.problems) - 1} more bad tasks)" if len(loaded.problems) > 1 else ""))
    return loaded.records


# --- export ---------------------------------------------------------------------------------
def _record_to_result(record: dict) -> list[dict]:
    text, result = record["text"], []
    for i, ent in enumerate(record.get("entities", [])):
        s, e = ent["start"], ent["end"]
        region = {"id": f"e{i}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels",
                  "value": {"start": s, "end": e, "text": text[s:e], "labels": [ent["label"]]}}
        if "score" in ent:
            region["score"] = ent["score"]
        result.append(region)
    for rel in record.get("relations", []):
        link = {"from_id": f"e{rel['head']}", "to_id": f"e{rel['tail']}", "type": "relation",
                "direction": "right", "labels": [rel["label"]]}
        if "score" in rel:
            link["score"] = rel["score"]
        result.append(link)
    return result


def export_labelstudio(records: list[dict], *, as_predictions: bool | None = None,
                       model_version: str = "marsad") -> list[dict]:
    """Label Studio tasks (importable into Label Studio) for ``records``, one task each.

    With ``as_predictions=None`` a record whose entities or relations carry a ``score`` (model
    output) becomes a prediction (scored by its mean entity score), any other an annotation;
    True/False forces one or the other. ``meta`` fields go into ``data`` beside text and id.
    """
    tasks = []
    for n, record in enumerate(records, 1):
        problems = validate_record(record)
        if problems:
            raise DataError(f"record {record.get('id', n)}: " + "; ".join(p.message for p in problems))
        meta = record.get("meta") or {}
        clash = {"text", "id"} & set(meta)
        if clash:
            raise DataError(f"record {record.get('id', n)}: meta field(s) {sorted(clash)} "
                            "would clash with data.text/id")
        data = {"text": record["text"], **({"id": record["id"]} if record.get("id") is not None else {}), **meta}
        result = _record_to_result(record)
        scored = [x.get("score") for x in record.get("entities", []) + record.get("relations", [])]
        predict = any(s is not None for s in scored) if as_predictions is None else as_predictions
        task: dict = {"id": n, "data": data, "annotations": [], "predictions": []}
        if predict:
            pred: dict = {"model_version": model_version, "result": result}
            ent_scores = [e["score"] for e in record.get("entities", []) if "score" in e]
            if ent_scores:
                pred["score"] = sum(ent_scores) / len(ent_scores)
            task["predictions"].append(pred)
        else:
            task["annotations"].append({"result": result, "was_cancelled": False})
        tasks.append(task)
    return tasks


def read_labelstudio(path: str | Path, **kw) -> list[dict]:
    """Records from a Label Studio JSON export file (keywords as :func:`import_labelstudio`)."""
    return import_labelstudio(Path(path), **kw)


def write_labelstudio(records: list[dict], path: str | Path, **kw) -> None:
    """Write records as a Label Studio JSON file (UTF-8, Arabic readable), atomically."""
    path = Path(path)
    tasks = export_labelstudio(records, **kw)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(tasks, f, ensure_ascii=False, indent=2)
        f.write("\n")
    tmp.replace(path)
