"""``marsad serve``: an HTTP service and a small web page over one :class:`~marsad.model.Extractor`.

Endpoints (FastAPI; the schema is at ``/openapi.json``, browsable at ``/docs``):

* ``POST /extract``: ``{"texts": [...]}`` or ``{"text": "..."}``, optional ``"date"``; answers
  ``{"records": [...]}``, one record per text, the same as ``marsad predict``'s JSONL records
  (``id``, ``text``, ``entities``, ``relations``) with the record's ``events`` (as
  ``--format events`` gives them) added. A text that is not a string, or is longer than
  ``max_chars``, gets a record with an ``error`` field and the others are answered.
* ``POST /extract/stream``: JSON Lines in (``{"id", "text", "date"}`` per line), JSON Lines out,
  one line per input line in input order, written as the records are ready.
* ``GET /health``, ``GET /info`` (labels, encoder, precision, limits, batching, marsad version).
* ``GET /`` and ``POST /``: a right-to-left page (no scripts at all) to paste an article and read
  the highlighted text, relations and events; built from :mod:`marsad.model.html`'s pieces.

Dynamic batching: every text of every request goes into one queue; one task takes the first
text waiting, then whatever else arrives within ``max_wait_ms`` (at once when the queue already
holds more), up to ``max_batch_size`` texts, and runs them as one ``Extractor.extract`` call in
a worker thread (the event loop never waits on the model). While the model runs, new requests
queue up and form the next batch.

Limits: ``max_body_bytes`` (413), ``max_texts`` per ``/extract`` request (413), ``max_chars``
per text (an error record in a batch or a stream; 413 for a single ``"text"``). Bad JSON is a
400, a body of the wrong shape a 422; no request gives a 500 with a traceback. An ``api_key``
is checked in constant time (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``) on every
endpoint but the page itself, ``/health`` and the docs. CORS is off unless ``cors_origins`` is
given. Binds 127.0.0.1 by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hmac
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import escape
from typing import Any, Union
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError
from .events import events_from_record
from .html import events_table_html, page_head, render_record, svg_map

__all__ = ["ServeConfig", "Batcher", "create_app", "serve", "ExtractRequest", "ExtractResponse", "Record"]


# --- settings --------------------------------------------------------------------------------
@dataclass
class ServeConfig:
    """The service's settings (each one a ``marsad serve`` option of the same name).

    Batching defaults: 32 texts is where a CPU stops gaining from bigger batches (measured at
    the tiny model on 2 cores: ~150 texts/s one at a time, ~330 at 16-64 per call) and is the
    Extractor's own CPU batch; 5 ms of waiting is small next to one call (10-100 ms) yet
    gathers the requests that a busy client sends together. On a GPU raise ``max_batch_size``."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 8 * 1024 * 1024
    max_texts: int = 256
    max_chars: int = 100_000
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    api_key: str | None = None
    cors_origins: list[str] = field(default_factory=list)

    def validate(self) -> "ServeConfig":
        """``self``, or a :class:`ConfigError` naming the setting that is out of range."""
        for name in ("max_body_bytes", "max_texts", "max_chars", "max_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive whole number, got {getattr(self, name)!r}")
        if not 0 <= self.max_wait_ms <= 10_000:
            raise ConfigError(f"max_wait_ms must be between 0 and 10000, got {self.max_wait_ms!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port!r}")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ConfigError("api_key must have at least 8 characters")
        return self

    def limits(self) -> dict:
        return {k: getattr(self, k) for k in ("max_body_bytes", "max_texts", "max_chars")}


# --- request and response models (they make the OpenAPI schema) -------------------------------
class ExtractRequest(BaseModel):
    """One article (``text``) or several (``texts``); ``date`` (the articles' date) is copied to
    each record and event."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"texts": ["قتل ثلاثة مدنيين في قصف على حلب."], "date": "2024-12-06"}]})
    text: Union[str, None] = Field(None, description="one article")
    texts: Union[list[Any], None] = Field(None, description="articles (strings); a non-string or a text over "
                                          "max_chars gets a record with an error, the others are answered",
                                          json_schema_extra={"items": {"type": "string"}})
    date: Union[datetime.date, None] = Field(None, description="the articles' date, YYYY-MM-DD")

    @model_validator(mode="after")
    def _one_of(self) -> "ExtractRequest":
        if (self.text is None) == (self.texts is None):
            raise ValueError('give exactly one of "text" (one article) or "texts" (a list of articles)')
        return self


class StreamItem(BaseModel):
    """One line of ``POST /extract/stream``: ``{"id", "text", "date"}`` (other fields are ignored)."""

    model_config = ConfigDict(extra="ignore")
    id: Union[int, str, None] = None
    text: str
    date: Union[datetime.date, None] = None


class Entity(BaseModel):
    start: int
    end: int
    label: str
    text: str
    score: float
    count: Union[int, None] = Field(None, description="CASUALTY: the number of people, if stated")
    approximate: Union[bool, None] = Field(None, description="CASUALTY: the count is approximate (نحو، أكثر من)")
    status: Union[str, None] = Field(None, description="CASUALTY: killed, injured, ...")


class Relation(BaseModel):
    head: int = Field(description="index into entities")
    tail: int = Field(description="index into entities")
    label: str
    score: float


class Event(BaseModel):
    """One event row, exactly as ``marsad predict --format events`` writes it (ACLED / PLOVER-style
    fields; see :mod:`marsad.model.events` for all of them)."""

    model_config = ConfigDict(extra="allow")
    record_id: Union[int, str, None]
    event: int
    sentence: str
    start: int
    end: int


class Record(BaseModel):
    """``marsad predict``'s record (``date`` when the request gave one) plus its events;
    ``error`` (and ``text: null``) for a bad text."""

    id: Union[int, str, None]
    date: Union[datetime.date, None] = None
    text: Union[str, None]
    entities: list[Entity]
    relations: list[Relation]
    events: list[Event]
    error: Union[str, None] = None


class ExtractResponse(BaseModel):
    records: list[Record]


class ErrorResponse(BaseModel):
    detail: Union[str, list[dict]]


class Health(BaseModel):
    status: str


class Info(BaseModel):
    marsad_version: str
    spec_version: str
    entity_labels: list[str]
    relation_labels: list[str]
    relation_types: dict[str, list[str]]
    encoder: dict[str, Any]
    precision: str
    device: str
    limits: dict[str, int]
    batching: dict[str, Union[int, float]]


# --- dynamic batching ------------------------------------------------------------------------
class Batcher:
    """Gathers the items (texts) of concurrent requests into batches for ``run`` (a blocking
    function from a list of items to a list of results, called in one worker thread); see the
    module docstring."""

    def __init__(self, run: Callable[[list], list], max_batch_size: int = 32, max_wait_ms: float = 5.0):
        self.run, self.max_batch_size, self.max_wait = run, max_batch_size, max_wait_ms / 1000
        self.batches = self.texts = 0  # calls made and texts run, for /info
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        self._queue = asyncio.Queue()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="marsad-model")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the task; texts still queued are cancelled."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue is not None and not self._queue.empty():
            self._queue.get_nowait()[1].cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def submit(self, item) -> asyncio.Future:
        """A future of ``run([item])[0]``, computed in a batch with the items queued around it."""
        if not self.alive:
            raise RuntimeError("the batcher is not running")
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return fut

    async def extract(self, items: list) -> list:
        """``run(items)``, batched with whatever else is queued."""
        return list(await asyncio.gather(*(self.submit(t) for t in items)))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [(t, f) for t, f in await self._collect() if not f.done()]  # done: its client left
            if not batch:
                continue
            self.batches += 1
            self.texts += len(batch)
            try:
                results = await loop.run_in_executor(self._pool, self.run, [t for t, _ in batch])
            except Exception as e:  # noqa: BLE001  (each waiting request gets the error)
                results = [e] * len(batch)
            for (_, fut), res in zip(batch, results):
                if not fut.done():
                    fut.set_exception(res) if isinstance(res, Exception) else fut.set_result(res)

    async def _collect(self) -> list[tuple[object, asyncio.Future]]:
        """The next batch: the first item waiting, and those that come within ``max_wait``."""
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch


# --- records -----------------------------------------------------------------------------------
def _model_records(extractor) -> Callable[[list[tuple]], list]:
    """The worker's function: the record of each ``(text, id, date)``, as ``marsad predict``
    makes it (``Extractor.extract``, then ``{"id": id, **record}``), with ``"date"`` when given
    and its ``"events"`` from :func:`~marsad.model.events.events_from_record`. Should a batch
    fail, its items are run one by one, so only the item at fault gets the exception."""

    def run(items: list[tuple]) -> list:
        try:
            records = extractor.extract([text for text, _, _ in items])
            return [_with_events(rec, rid, date) for (_, rid, date), rec in zip(items, records)]
        except Exception as e:  # noqa: BLE001
            if len(items) == 1:
                return [e]
            return [res for item in items for res in run([item])]

    return run


def _with_events(rec: dict, rid, date: datetime.date | None) -> dict:
    record = {"id": rid, **rec, **({"date": date.isoformat()} if date else {})}  # as predict orders them
    return {**record, "events": events_from_record(record, rid)}


def _error_record(rid, message: str) -> dict:
    """A bad text's place in the answer, as in ``marsad predict``."""
    return {"id": rid, "text": None, "entities": [], "relations": [], "events": [], "error": message}


def _text_problem(text, max_chars: int, what: str = "the text") -> str | None:
    """Why ``text`` cannot be extracted (not a string, over ``max_chars``), or None."""
    if not isinstance(text, str):
        return f"{what} must be a string, got {'null' if text is None else type(text).__name__}"
    if len(text) > max_chars:
        return f"{what} has {len(text)} characters, over the limit max_chars={max_chars} (marsad serve --max-chars)"
    return None


def _dumps(obj) -> bytes:
    """JSON bytes, Arabic kept readable; unpaired surrogates (not UTF-8) escaped as ``\\udXXX``."""
    try:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True).encode("utf-8")


def _json(obj, status: int = 200) -> Response:
    return Response(_dumps(obj), status_code=status, media_type="application/json")


# --- reading requests ----------------------------------------------------------------------------
async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 as soon as it is known to be over ``limit`` bytes."""
    too_big = f"the body is over the limit max_body_bytes={limit} (marsad serve --max-body-bytes)"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, too_big)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, too_big)
    return bytes(body)


def _parse_json(raw: bytes):
    """The JSON value of a body, or a 400 saying where it breaks."""
    if not raw.strip():
        raise HTTPException(400, 'the body is empty; send JSON such as {"text": "..."}')
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise HTTPException(400, f"the body is not UTF-8 (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise HTTPException(400, f"the body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise HTTPException(400, "the body is not valid JSON: nested too deeply") from None


def _validation_detail(e: ValidationError) -> list[dict]:
    """Pydantic's errors without the input (which may be a whole article) or docs links."""
    return [{"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
            for err in e.errors(include_url=False, include_input=False, include_context=False)]


def _parse_request(raw: bytes) -> ExtractRequest:
    """An :class:`ExtractRequest` from a body, or a 400 (not JSON) or 422 (wrong shape)."""
    obj = _parse_json(raw)
    try:
        return ExtractRequest.model_validate(obj)
    except ValidationError as e:
        raise HTTPException(422, _validation_detail(e)) from None


def _stream_items(raw: bytes, max_chars: int) -> list[tuple[Any, str | None, datetime.date | None, str | None]]:
    """``(id, text, date, error)`` per non-blank JSON line; a bad line has ``error`` set."""
    items = []
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            items.append((lineno, None, None, f"{where}: not a JSON line ({e.__class__.__name__}: {str(e)[:120]})"))
            continue
        rid = obj.get("id", lineno) if isinstance(obj, dict) else lineno
        problem = (f"{where}: a line must be a JSON object with a \"text\"" if not isinstance(obj, dict)
                   else f'{where}: the record has no "text" field' if "text" not in obj
                   else _text_problem(obj["text"], max_chars, f'{where}: "text"'))
        if problem:
            items.append((rid if isinstance(rid, (int, str)) else lineno, None, None, problem))
            continue
        try:
            item = StreamItem.model_validate({**obj, "id": rid})
        except ValidationError as e:
            err = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in _validation_detail(e))
            items.append((lineno, None, None, f"{where}: {err}"))
            continue
        items.append((item.id, item.text, item.date, None))
    return items


# --- the page ----------------------------------------------------------------------------------
_PAGE_STYLE = """
form textarea{width:100%;box-sizing:border-box;font:inherit;padding:.5rem}
form .row{margin:.5rem 0;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
button{font:inherit;padding:.2rem 1.5rem}
"""
_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"


def render_page(config: ServeConfig, text: str = "", date: str = "", key: str = "",
                record: dict | None = None, error: str | None = None) -> str:
    """The service's page: the form, then an error or the record: highlighted text and relations,
    the events' map and table, from :mod:`marsad.model.html`'s pieces (without the report's
    script: the table does not sort, and nothing but this service is ever contacted)."""
    parts = page_head("marsad", style=_PAGE_STYLE)
    key_field = (f'<label>API key <input type="password" name="api_key" value="{escape(key)}" autocomplete="current-password"></label>'
                 if config.api_key else "")
    parts += [
        '<form method="post" action="/" accept-charset="utf-8">',
        f'<textarea name="text" rows="10" dir="auto" maxlength="{config.max_chars}" '
        f'placeholder="الصق نص الخبر هنا (paste an article)">{escape(text)}</textarea>',
        f'<div class="row"><label>التاريخ (date) <input type="date" name="date" value="{escape(date)}"></label>{key_field}'
        '<button type="submit">استخراج (extract)</button></div>',
        "</form>",
    ]
    if error:
        parts.append(f'<p class="error" role="alert">{escape(error)}</p>')
    if record is not None:
        events = record["events"]
        parts += [render_record({**record, "id": record.get("date") or ""}), '<section id="events">',
                  f"<h2>الأحداث events: {len(events)}</h2>", svg_map(events) if events else "",
                  events_table_html(events) if events else '<p class="noevents">لا أحداث (no events)</p>', "</section>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _page_response(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": _PAGE_CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


# --- the app ----------------------------------------------------------------------------------
def _check_key(config: ServeConfig, request: Request, given: str | None = None) -> None:
    """A 401 unless the request carries the API key (compared in constant time)."""
    if config.api_key is None:
        return
    if given is None:
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), config.api_key.encode("utf-8", "surrogatepass")):
        raise HTTPException(401, "a valid API key is needed: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                            headers={"WWW-Authenticate": "Bearer"})


def _install_error_handlers(app: FastAPI) -> None:
    """JSON errors everywhere; an unexpected one is a 500 with its type, never a traceback."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                                        for e in exc.errors()]}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server's log"}, status_code=500)


_ERRORS = {code: {"model": ErrorResponse, "description": what} for code, what in (
    (400, "the body is not JSON"), (401, "a valid API key is needed"), (413, "a limit is broken (named in detail)"),
    (422, "the body has the wrong shape"))}


def create_app(extractor, config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI app serving ``extractor`` under ``config`` (see the module docstring)."""
    config = (config or ServeConfig()).validate()
    batcher = Batcher(_model_records(extractor), config.max_batch_size, config.max_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="marsad", version=_version(), lifespan=lifespan,
                  description="Arabic conflict-news extraction: entities, relations, casualty counts and events.")
    app.state.batcher, app.state.config, app.state.extractor = batcher, config, extractor
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key"])
    _install_error_handlers(app)
    _add_api_routes(app, config, batcher, extractor)
    _add_page_routes(app, config, batcher)
    return app


def _add_api_routes(app: FastAPI, config: ServeConfig, batcher: Batcher, extractor) -> None:
    """``/extract``, ``/extract/stream``, ``/health`` and ``/info``."""
    body_doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": ExtractRequest.model_json_schema()}}}}

    @app.post("/extract", response_model=ExtractResponse, responses=_ERRORS, openapi_extra=body_doc, tags=["extract"])
    async def extract(request: Request):
        """Records for ``{"text": ...}`` or ``{"texts": [...]}`` (optional ``"date"``), in order."""
        _check_key(config, request)
        req = _parse_request(await _read_body(request, config.max_body_bytes))
        if req.text is not None and (problem := _text_problem(req.text, config.max_chars)):
            raise HTTPException(413, problem)
        texts = [req.text] if req.text is not None else req.texts
        if len(texts) > config.max_texts:
            raise HTTPException(413, f"{len(texts)} texts, over the limit max_texts={config.max_texts} "
                                     "(marsad serve --max-texts); send fewer, or use POST /extract/stream")
        problems = [_text_problem(t, config.max_chars, f"text {i}") for i, t in enumerate(texts)]
        good = [i for i, p in enumerate(problems) if p is None]
        results = dict(zip(good, await batcher.extract([(texts[i], i, req.date) for i in good])))
        return _json({"records": [results[i] if p is None else _error_record(i, p) for i, p in enumerate(problems)]})

    stream_doc = {"requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": {
        "type": "string", "description": 'JSON Lines: {"id", "text", "date"} per line'}}}}}

    @app.post("/extract/stream", responses={200: {"content": {"application/x-ndjson": {}},
                                                  "description": "one Record (JSON) per input line, in order"}, **_ERRORS},
              openapi_extra=stream_doc, tags=["extract"])
    async def extract_stream(request: Request):
        """JSON Lines in, JSON Lines out: one record per non-blank line, in order, as they are ready;
        a bad line (not JSON, no ``text``, too long) gets an ``error`` record in its place."""
        _check_key(config, request)
        items = _stream_items(await _read_body(request, config.max_body_bytes), config.max_chars)
        return StreamingResponse(_stream_records(items, batcher, 2 * config.max_batch_size), media_type="application/x-ndjson")

    @app.get("/health", response_model=Health, responses={503: {"model": ErrorResponse}}, tags=["service"])
    async def health():
        """200 while the model is loaded and its worker runs."""
        if not batcher.alive:
            raise HTTPException(503, "the model worker is not running")
        return {"status": "ok"}

    @app.get("/info", response_model=Info, responses={401: _ERRORS[401]}, tags=["service"])
    async def info(request: Request):
        """The model's labels, encoder and precision, the limits and batching, marsad's version."""
        _check_key(config, request)
        return _info(extractor, config, batcher)


async def _stream_records(items: list, batcher: Batcher, window: int) -> AsyncIterator[bytes]:
    """The output lines of ``/extract/stream`` in order, with at most ``window`` texts queued at a
    time (so a long stream shares the model with other requests)."""
    pending: deque = deque()
    try:
        for rid, text, date, error in items:
            pending.append((rid, error, None if error else batcher.submit((text, rid, date))))
            while len(pending) > window or (pending and pending[0][2] is None):
                yield await _stream_line(pending.popleft())
        while pending:
            yield await _stream_line(pending.popleft())
    finally:  # the client left: its queued texts are skipped
        for *_, fut in pending:
            if fut is not None:
                fut.cancel()


async def _stream_line(entry) -> bytes:
    rid, error, fut = entry
    return _dumps(_error_record(rid, error) if error else await fut) + b"\n"


def _info(extractor, config: ServeConfig, batcher: Batcher) -> dict:
    """What ``GET /info`` answers."""
    settings, cfg = extractor.settings, extractor.model.config
    encoder = {"model_type": cfg.model_type, "hidden_size": cfg.hidden_size,
               "num_hidden_layers": getattr(cfg, "num_hidden_layers", None), "max_length": settings.max_length,
               "gazetteer": settings.gazetteer, "lexicon": settings.lexicon,
               "backend": "onnx" if extractor.backend.onnx is not None else "fast" if extractor.backend.fast is not None else "torch"}
    return {"marsad_version": _version(), "spec_version": settings.spec_version,
            "entity_labels": list(settings.entity_labels), "relation_labels": list(settings.relation_labels),
            "relation_types": {k: list(v) for k, v in settings.relation_types.items()}, "encoder": encoder,
            "precision": extractor.precision, "device": str(extractor.device), "limits": config.limits(),
            "batching": {"max_batch_size": config.max_batch_size, "max_wait_ms": config.max_wait_ms,
                         "batches": batcher.batches, "texts": batcher.texts}}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("marsad")
    except PackageNotFoundError:
        return "unknown"


def _add_page_routes(app: FastAPI, config: ServeConfig, batcher: Batcher) -> None:
    """``GET /`` (the form) and ``POST /`` (the form's answer)."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return _page_response(render_page(config))

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    async def page_extract(request: Request):
        try:
            raw = await _read_body(request, config.max_body_bytes)
        except HTTPException as e:
            return _page_response(render_page(config, error=str(e.detail)), e.status_code)
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        text, date_s, key = form.get("text", ""), form.get("date", ""), form.get("api_key", "")
        text = text.replace("\r\n", "\n")  # browsers send textarea lines as CRLF
        again = dict(text=text, date=date_s, key=key)
        try:
            _check_key(config, request, key)
            date = datetime.date.fromisoformat(date_s) if date_s else None
        except HTTPException as e:
            return _page_response(render_page(config, **again, error=str(e.detail)), e.status_code)
        except ValueError:
            return _page_response(render_page(config, **again, error=f"the date {date_s!r} is not YYYY-MM-DD"), 422)
        if problem := _text_problem(text, config.max_chars):
            return _page_response(render_page(config, **again, error=problem), 413)
        [record] = await batcher.extract([(text, 0, date)])
        return _page_response(render_page(config, **again, record=record))


# --- running -----------------------------------------------------------------------------------
def serve(extractor, config: ServeConfig | None = None, *, log_level: str = "info") -> None:
    """Serve ``extractor`` with uvicorn until interrupted (the model is loaded before the port
    opens, so ``/health`` answers 200 from the first request)."""
    import uvicorn

    config = (config or ServeConfig()).validate()
    app = create_app(extractor, config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, server_header=False,
                timeout_graceful_shutdown=5)
