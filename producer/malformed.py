"""Records that break exactly one counting rule each, for every reason code.

``build(reason, rng, parts)`` starts from a would-be valid event (``parts``) and breaks it
so that the record's first failing rule, in the priority order of ``counting.reasons``, is
``reason``. Each reason has several variants, edge cases included (hour 24, second 60,
Feb 29 of a common year, a trailing newline in video_id, a value one byte too large).
"""

from __future__ import annotations

import json
import random
from typing import Callable, NamedTuple

from counting.reasons import (
    BAD_EVENT_ID,
    BAD_EVENT_TIME,
    BAD_JSON,
    BAD_USER_ID,
    BAD_VIDEO_ID,
    FUTURE_EVENT_TIME,
    INVALID_UTF8,
    MAX_FUTURE_SECONDS,
    MAX_VALUE_BYTES,
    MISSING_EVENT_ID,
    MISSING_EVENT_TIME,
    MISSING_VIDEO_ID,
    NOT_OBJECT,
    TOO_LARGE,
)
from producer.timeformat import OFFSETS, civil, rfc3339_millis


class Parts(NamedTuple):
    """A would-be valid event; ``event_time`` is a JSON fragment."""

    event_id: str
    video_id: str
    event_time: str
    user_id: str
    timestamp_ms: int


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _fields(parts: Parts) -> dict[str, str]:
    """JSON fragments of a valid event, field by field, ready to be broken."""
    return {"event_id": _quote(parts.event_id), "video_id": _quote(parts.video_id),
            "event_time": parts.event_time, "user_id": _quote(parts.user_id)}


def _object(fields: dict[str, str]) -> bytes:
    return ("{" + ",".join(f'"{name}":{fragment}' for name, fragment in fields.items()) + "}").encode()


def _with(parts: Parts, field: str, fragment: str | None) -> bytes:
    """The event with one field replaced by a fragment, or removed when ``fragment`` is None."""
    fields = _fields(parts)
    if fragment is None:
        del fields[field]
    else:
        fields[field] = fragment
    return _object(fields)


def _too_large(rng: random.Random, parts: Parts) -> tuple[str | None, bytes]:
    head = _object(_fields(parts))[:-1] + b',"debug":"'
    size = MAX_VALUE_BYTES + 1 if rng.random() < 0.3 else rng.randint(MAX_VALUE_BYTES + 2, 100_000)
    filler = b"\xff" if rng.random() < 0.2 else b"x"  # too large beats invalid UTF-8
    return parts.video_id, head + filler * (size - len(head) - 2) + b'"}'


def _invalid_utf8(rng: random.Random, parts: Parts) -> tuple[str | None, bytes]:
    bad = rng.choice([b"\xff", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"Jos\xe9", b"\xf8\x88\x80\x80\x80"])
    value = _with(parts, "user_id", '"@@"').replace(b"@@", b"u-" + bad)
    return parts.video_id, value


def _bad_json(rng: random.Random, parts: Parts) -> tuple[str | None, bytes | None]:
    valid = _object(_fields(parts))
    variants = [
        None, b"", b"   \n", valid[:-1], valid[: len(valid) // 2], valid[:-1] + b",}",
        valid.replace(b'"', b"'"), valid[:-1] + b',"score":NaN}', valid[:-1] + b',"score":-Infinity}',
        valid[:-1] + b',"event_id":"' + parts.event_id.encode() + b'"}',
        valid.replace(b'"user_id":"', b'"user_id":"\t'), valid.replace(b'"user_id":"', b'"user_id":"\x01'),
        valid + b"{}", b"\xef\xbb\xbf" + valid, valid.replace(b'"event_id"', b"event_id"),
        b"// view\n" + valid, valid[:-1] + b',"n":01}', valid[:-1] + b',"meta":{"a":1,"a":2}}',
    ]
    return parts.video_id, rng.choice(variants)


def _not_object(rng: random.Random, parts: Parts) -> tuple[str | None, bytes]:
    valid = _object(_fields(parts)).decode()
    variants = [f"[{valid}]", "[]", _quote(parts.event_id), "42", "null", "true", " 3.5 "]
    return parts.video_id, rng.choice(variants).encode()


def _missing(field: str) -> Callable[[random.Random, Parts], tuple[str | None, bytes]]:
    def build(rng: random.Random, parts: Parts) -> tuple[str | None, bytes]:
        key = None if field == "video_id" else parts.video_id
        return key, _with(parts, field, rng.choice([None, "null"]))
    return build


def _bad_event_id(rng: random.Random, parts: Parts) -> tuple[str | None, bytes]:
    variants = ["42", '""', _quote("e" * 65), f'["{parts.event_id}"]', "true", '{"id":"x"}', "12.5"]
    return parts.video_id, _with(parts, "event_id", rng.choice(variants))


def _bad_video_id(rng: random.Random, parts: Parts) -> tuple[str | None, bytes]:
    video = parts.video_id
    # (JSON fragment, the string a client would also have used as the record key)
    variants = [('"has space"', "has space"), ('""', None), (_quote("a" * 65), "a" * 65),
                (f'"{video}/1"', f"{video}/1"), (f'"{video}é"', f"{video}é"),
                (f'"{video}\\n"', f"{video}\n"), ("12345", None), (f'["{video}"]', None),
                (f'"{video}\\u0000"', f"{video}\0")]
    fragment, key = rng.choice(variants)
    return key, _with(parts, "video_id", fragment)


def _bad_event_time(rng: random.Random, parts: Parts) -> tuple[str | None, bytes]:
    ts = parts.timestamp_ms
    day, clock, _ = civil(ts)
    year = int(day[:4])
    common_year = year + 1 if year % 4 == 0 else year
    variants = [
        f'"{day}T24:00:00Z"', f'"{day}T23:59:60Z"', f'"{year}-02-30T10:00:00Z"',
        f'"{common_year}-02-29T10:00:00Z"', f'"{year}-13-01T00:00:00Z"', f'"{day}T{clock}"',
        f'"{day}"', '"yesterday"', '""', f'"{ts}"', f"{ts}.0", f"{ts / 1000:.3f}", "1.7e12",
        "true", "253402300800000", "-62135596800001", f'"{day}T{clock}+24:00"',
        f'"{day}T{clock}.Z"', '"\u0662' + rfc3339_millis(ts)[1:] + '"', '{"ms":1}',
        f'" {day}T{clock}Z"', f'"{day}T{clock}Z "', "[" + str(ts) + "]",
    ]
    return parts.video_id, _with(parts, "event_time", rng.choice(variants))


def _bad_user_id(rng: random.Random, parts: Parts) -> tuple[str | None, bytes]:
    fragment = rng.choice(["42", "true", "false", "{}", f'["{parts.user_id}"]', "3.5"])
    return parts.video_id, _with(parts, "user_id", fragment)


def _future_event_time(rng: random.Random, parts: Parts) -> tuple[str | None, bytes]:
    limit_ms = parts.timestamp_ms + MAX_FUTURE_SECONDS * 1000
    ahead_ms = limit_ms + 1 + (0 if rng.random() < 0.1 else rng.randrange(2 * 86_400_000))
    style = rng.random()
    if style < 0.4:
        fragment = str(ahead_ms)
    elif style < 0.8:
        fragment = _quote(rfc3339_millis(ahead_ms))
    else:
        offset_minutes, offset_text = OFFSETS[rng.randrange(len(OFFSETS))]
        local = rfc3339_millis(ahead_ms + offset_minutes * 60_000)
        fragment = _quote(local[:-1] + offset_text)
    return parts.video_id, _with(parts, "event_time", fragment)


BUILDERS: dict[str, Callable[[random.Random, Parts], tuple[str | None, bytes | None]]] = {
    TOO_LARGE: _too_large,
    INVALID_UTF8: _invalid_utf8,
    BAD_JSON: _bad_json,
    NOT_OBJECT: _not_object,
    MISSING_EVENT_ID: _missing("event_id"),
    BAD_EVENT_ID: _bad_event_id,
    MISSING_VIDEO_ID: _missing("video_id"),
    BAD_VIDEO_ID: _bad_video_id,
    MISSING_EVENT_TIME: _missing("event_time"),
    BAD_EVENT_TIME: _bad_event_time,
    BAD_USER_ID: _bad_user_id,
    FUTURE_EVENT_TIME: _future_event_time,
}


def build(reason: str, rng: random.Random, parts: Parts) -> tuple[bytes | None, bytes | None]:
    """(record key, record value) of a record whose first failing rule is ``reason``."""
    key, value = BUILDERS[reason](rng, parts)
    return (key.encode() if key else None), value

