"""Spans <-> IOB2 tags over spec tokens. Pure functions, exact round trip.

A span is ``(start, end, label)`` in character offsets of the text the tokens came from
(end exclusive). Offsets are the source of truth; tags are derived from them.
"""

from __future__ import annotations

from collections.abc import Sequence

from .text import Token

__all__ = ["viterbi_iob2", "viterbi_iob2_batch", "SpanError", "spans_to_tags", "tags_to_spans", "iob2_errors", "repair_iob2"]


from .errors import SpanError  # noqa: E402


def spans_to_tags(tokens: Sequence[Token], spans: Sequence[tuple[int, int, str]]) -> list[str]:
    """IOB2 tags for ``tokens`` from character spans.

    Raises :class:`SpanError` when a span does not start and end on token boundaries, covers
    no token, or overlaps another span.
    """
    tags = ["O"] * len(tokens)
    starts = {t.start: i for i, t in enumerate(tokens)}
    ends = {t.end: i for i, t in enumerate(tokens)}
    for start, end, label in sorted(spans):
        if start not in starts or end not in ends:
            raise SpanError(f"span [{start}, {end}) {label} is not on token boundaries")
        first, last = starts[start], ends[end]
        if last < first:
            raise SpanError(f"span [{start}, {end}) {label} covers no token")
        if any(t != "O" for t in tags[first : last + 1]):
            raise SpanError(f"span [{start}, {end}) {label} overlaps another span")
        tags[first] = f"B-{label}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{label}"
    return tags


def iob2_errors(tags: Sequence[str]) -> list[str]:
    """Describe every violation of IOB2 in ``tags`` (empty list when valid)."""
    errors = []
    prev = "O"
    for i, tag in enumerate(tags):
        if tag != "O" and not (len(tag) > 2 and tag[:2] in ("B-", "I-")):
            errors.append(f"token {i}: tag {tag!r} is not O, B-X or I-X")
        elif tag.startswith("I-") and prev[2:] != tag[2:]:
            errors.append(f"token {i}: {tag} follows {prev} (a span must start with B-{tag[2:]})")
        prev = tag
    return errors


def repair_iob2(tags: Sequence[str]) -> list[str]:
    """Make predicted tags valid IOB2: an ``I-X`` that cannot continue a span starts one."""
    out = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def tags_to_spans(tokens: Sequence[Token], tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Character spans from valid IOB2 tags (raises ``ValueError`` on invalid sequences)."""
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    errors = iob2_errors(tags)
    if errors:
        raise ValueError("invalid IOB2: " + "; ".join(errors))
    spans: list[tuple[int, int, str]] = []
    for tok, tag in zip(tokens, tags):
        if tag.startswith("B-"):
            spans.append((tok.start, tok.end, tag[2:]))
        elif tag.startswith("I-"):
            s, _, label = spans[-1]
            spans[-1] = (s, tok.end, label)
    return spans


def viterbi_iob2(scores, labels: Sequence[str]) -> list[str]:
    """The best valid IOB2 sequence under per-token label ``scores`` (log-probabilities,
    shape ``(n_tokens, n_labels)``, any nested sequence or tensor).

    Unlike arg-max followed by :func:`repair_iob2`, this never cuts a span in two because one
    inner token's ``I-X`` was slightly less likely than ``B-X``: it picks the highest-scoring
    sequence in which every ``I-X`` continues an ``X`` span.
    """
    n_labels = len(labels)
    rows = scores.tolist() if hasattr(scores, "tolist") else [list(r) for r in scores]
    if not rows:
        return []
    types = [label[2:] if label != "O" else None for label in labels]
    is_inside = [label.startswith("I-") for label in labels]
    # allowed[p][c]: label c may follow label p
    allowed = [[not is_inside[c] or types[p] == types[c] for c in range(n_labels)] for p in range(n_labels)]
    neg = float("-inf")
    best = [neg if is_inside[c] else rows[0][c] for c in range(n_labels)]
    back: list[list[int]] = []
    for row in rows[1:]:
        nxt, ptr = [], []
        for c in range(n_labels):
            p_best, p_arg = neg, 0
            for p in range(n_labels):
                if allowed[p][c] and best[p] > p_best:
                    p_best, p_arg = best[p], p
            nxt.append(p_best + row[c])
            ptr.append(p_arg)
        best = nxt
        back.append(ptr)
    c = max(range(n_labels), key=lambda k: best[k])
    path = [c]
    for ptr in reversed(back):
        c = ptr[c]
        path.append(c)
    return [labels[k] for k in reversed(path)]


def viterbi_iob2_batch(scores, lengths, labels: Sequence[str]):
    """:func:`viterbi_iob2` for a padded batch at once, in numpy: ``scores`` (R, W, L)
    log-probabilities, ``lengths`` (R,) -> label indices (R, W), 0 past each row's length.

    The same recurrence (float64 sums, first best on ties), so it returns exactly the paths
    :func:`viterbi_iob2` does, one vectorised step per word position instead of a Python loop
    per sentence, word and label pair.
    """
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    n_rows, width, n_labels = scores.shape
    path = np.zeros((n_rows, width), dtype=np.int64)
    if n_rows == 0 or width == 0:
        return path
    types = [label[2:] if label != "O" else None for label in labels]
    inside = np.array([label.startswith("I-") for label in labels])
    allowed = np.array([[not inside[c] or types[p] == types[c] for c in range(n_labels)] for p in range(n_labels)])
    trans = np.where(allowed, 0.0, -np.inf)  # (prev, cur)
    best = np.where(inside[None, :], -np.inf, scores[:, 0])
    back = np.zeros((n_rows, width, n_labels), dtype=np.int64)
    for t in range(1, width):
        cand = best[:, :, None] + trans[None]  # (R, prev, cur)
        arg = cand.argmax(1)
        nxt = np.take_along_axis(cand, arg[:, None, :], 1)[:, 0] + scores[:, t]
        live = (t < lengths)[:, None]
        best = np.where(live, nxt, best)
        back[:, t] = arg
    cur = best.argmax(1)
    rows = np.arange(n_rows)
    for t in range(width - 1, -1, -1):
        live = t < lengths
        path[:, t] = np.where(live, cur, 0)
        if t:
            cur = np.where(live, back[rows, t, cur], cur)
    return path
