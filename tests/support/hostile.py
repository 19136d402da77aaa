"""Hostile Kafka records for the poison-input tests, each with the reason it must get.

Every record is tagged with the reason code the counting rules give it, or ``None`` for
the few that look hostile but are valid events (a CQL-looking event_id, a value of exactly
64 KiB, an event in year 1): those must be counted like any other view, not dead-lettered.
The test checks each tag against the pure-Python oracle too, so a wrong tag fails loudly.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from typing import Callable, NamedTuple

from counting import reasons as R


class Hostile(NamedTuple):
    kind: str
    key: bytes | None
    value: bytes | None
    reason: str | None


CQL = [
    "x'; DROP TABLE minute_counts; --",
    "1 OR 1=1",
    "a'); TRUNCATE viewcount.minute_counts; --",
    "' UNION SELECT * FROM system_auth.roles --",
    "$$ BEGIN BATCH DELETE FROM minute_counts; APPLY BATCH $$",
]
CONTROL = ["\u0000", "\u0001", "\u0007", "\u001b[31m", "\u007f", "\u2028", "\ufeff", "\r\n"]


def _event(event_id: str, video_id, event_time, user_id="u-1", **extra) -> dict:
    return {"event_id": event_id, "video_id": video_id, "event_time": event_time,
            "user_id": user_id, **extra}


def _json(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def _rfc3339(ms: int) -> str:
    import datetime as dt

    moment = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class HostileFactory:
    """Builds one hostile record of a kind at a time, around a would-be valid event whose
    event_time is a little before the record's Kafka timestamp."""

    def __init__(self, rng: random.Random, videos: list[str], size_limit: int) -> None:
        self.rng = rng
        self.videos = videos
        self.size_limit = size_limit
        self.kinds: dict[str, Callable[[int], Hostile]] = {
            name[len("_k_"):]: getattr(self, name) for name in sorted(dir(self)) if name.startswith("_k_")
        }

    def build(self, kind: str, kafka_ms: int) -> Hostile:
        return self.kinds[kind](kafka_ms)

    def _base(self, kafka_ms: int) -> dict:
        return _event(str(uuid.UUID(int=self.rng.getrandbits(128))), self.rng.choice(self.videos),
                      kafka_ms - self.rng.randint(0, 30_000))

    def _key(self, event: dict) -> bytes:
        video = event.get("video_id")
        return video.encode("utf-8", "surrogatepass") if isinstance(video, str) else b"hostile"

    def _made(self, kind: str, event: dict, value: bytes | None, reason: str | None) -> Hostile:
        return Hostile(kind, self._key(event), value, reason)

    # --- invalid UTF-8 -------------------------------------------------------------------
    def _k_invalid_utf8(self, kafka_ms: int) -> Hostile:
        event = self._base(kafka_ms)
        good = _json(event)
        poison = self.rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80",
                                  b"\xe2\x82", b"\xf4\x90\x80\x80"])
        cut = good.index(b'"user_id": "') + len(b'"user_id": "')
        return self._made("invalid_utf8", event, good[:cut] + poison + good[cut:], R.INVALID_UTF8)

    # --- nesting -------------------------------------------------------------------------
    def _k_deep_nesting(self, kafka_ms: int) -> Hostile:
        event = self._base(kafka_ms)
        depth = self.rng.choice([1_000, 1_500, 5_000, 20_000])
        shape = self.rng.choice(["array", "object", "field"])
        if shape == "array":
            value = b"[" * depth + b"]" * depth
        elif shape == "object":
            value = b'{"a":' * depth + b"1" + b"}" * depth
        else:  # a valid event with one extra field nested too deep to parse
            value = _json(event)[:-1] + b', "extra": ' + b"[" * depth + b"]" * depth + b"}"
        reason = R.TOO_LARGE if len(value) > R.MAX_VALUE_BYTES else R.BAD_JSON
        return self._made("deep_nesting", event, value, reason)

    # --- sizes ---------------------------------------------------------------------------
    def _k_oversized(self, kafka_ms: int) -> Hostile:
        """A valid event padded past 64 KiB, up to the topic's record limit (incompressible,
        so compression cannot sneak it under the broker's limit)."""
        event = self._base(kafka_ms)
        target = self.rng.randint(R.MAX_VALUE_BYTES + 1, self.size_limit)
        padding = base64.b64encode(self.rng.randbytes(target * 3 // 4 + 3)).decode()
        value = _json({**event, "padding": ""})
        value = _json({**event, "padding": padding[: max(0, target - len(value))]})
        return self._made("oversized", event, value, R.TOO_LARGE if len(value) > R.MAX_VALUE_BYTES else None)

    def _k_exactly_64k(self, kafka_ms: int) -> Hostile:
        """64 KiB to the byte is still a valid event; one more byte is too large."""
        event = self._base(kafka_ms)
        extra = self.rng.choice([0, 1])
        value = _json({**event, "padding": ""})
        value = _json({**event, "padding": "p" * (R.MAX_VALUE_BYTES + extra - len(value))})
        return self._made("exactly_64k", event, value, R.TOO_LARGE if extra else None)

    # --- wrong types ---------------------------------------------------------------------
    def _k_wrong_types(self, kafka_ms: int) -> Hostile:
        event = self._base(kafka_ms)
        field, bad, reason = self.rng.choice([
            ("event_id", 12345, R.BAD_EVENT_ID), ("event_id", True, R.BAD_EVENT_ID),
            ("event_id", ["a"], R.BAD_EVENT_ID), ("event_id", {"id": "a"}, R.BAD_EVENT_ID),
            ("event_id", "", R.BAD_EVENT_ID), ("event_id", "e" * 65, R.BAD_EVENT_ID),
            ("video_id", 7, R.BAD_VIDEO_ID), ("video_id", ["v"], R.BAD_VIDEO_ID),
            ("video_id", False, R.BAD_VIDEO_ID), ("video_id", "v" * 65, R.BAD_VIDEO_ID),
            ("event_time", True, R.BAD_EVENT_TIME), ("event_time", {"ms": 1}, R.BAD_EVENT_TIME),
            ("event_time", [kafka_ms], R.BAD_EVENT_TIME), ("event_time", "yesterday", R.BAD_EVENT_TIME),
            ("event_time", kafka_ms + 0.5, R.BAD_EVENT_TIME), ("user_id", 42, R.BAD_USER_ID),
            ("user_id", ["u"], R.BAD_USER_ID), ("user_id", {"u": 1}, R.BAD_USER_ID),
            ("event_id", None, R.MISSING_EVENT_ID), ("video_id", None, R.MISSING_VIDEO_ID),
            ("event_time", None, R.MISSING_EVENT_TIME),
        ])
        return self._made("wrong_types", event, _json({**event, field: bad}), reason)

    def _k_not_an_object(self, kafka_ms: int) -> Hostile:
        event = self._base(kafka_ms)
        value, reason = self.rng.choice([
            (None, R.BAD_JSON), (b"", R.BAD_JSON), (b"   ", R.BAD_JSON), (b"null", R.NOT_OBJECT),
            (b"[]", R.NOT_OBJECT), (b'"a string"', R.NOT_OBJECT), (b"12", R.NOT_OBJECT),
            (_json([event]), R.NOT_OBJECT), (b"\xef\xbb\xbf" + _json(event), R.BAD_JSON),
            (_json(event) + b" trailing", R.BAD_JSON), (_json(event)[:-1], R.BAD_JSON),
            (_json(event) + _json(event), R.BAD_JSON),
        ])
        return self._made("not_an_object", event, value, reason)

    # --- numbers -------------------------------------------------------------------------
    def _k_nan_and_huge_numbers(self, kafka_ms: int) -> Hostile:
        event = self._base(kafka_ms)
        text, reason = self.rng.choice([
            ("NaN", R.BAD_JSON), ("Infinity", R.BAD_JSON), ("-Infinity", R.BAD_JSON),
            ("1e400", R.BAD_EVENT_TIME), ("-1e400", R.BAD_EVENT_TIME),
            ("99999999999999999999999999999", R.BAD_EVENT_TIME),
            ("-9223372036854775809", R.BAD_EVENT_TIME), ("9223372036854775808", R.BAD_EVENT_TIME),
            (str(R.MAX_EPOCH_MILLIS + 1), R.BAD_EVENT_TIME), (str(R.MIN_EPOCH_MILLIS - 1), R.BAD_EVENT_TIME),
            (f"{kafka_ms}.0", R.BAD_EVENT_TIME), (f"{kafka_ms}e0", R.BAD_EVENT_TIME),
        ])
        value = _json({**event, "event_time": 0}).replace(b'"event_time": 0', b'"event_time": ' + text.encode())
        return self._made("nan_and_huge_numbers", event, value, reason)

    # --- control characters -------------------------------------------------------------
    def _k_control_characters(self, kafka_ms: int) -> Hostile:
        event = self._base(kafka_ms)
        char = self.rng.choice(CONTROL)
        if self.rng.random() < 0.5:  # escaped in JSON, inside the video_id: not [A-Za-z0-9_-]
            return self._made("control_characters", event,
                              _json({**event, "video_id": event["video_id"] + char}), R.BAD_VIDEO_ID)
        # raw, unescaped in a JSON string: control characters below U+0020 are not JSON
        raw = self.rng.choice(["\u0000", "\u0001", "\n", "\t", "\u001f"])
        value = _json({**event, "user_id": "u-X"}).replace(b"u-X", f"u-{raw}".encode())
        return self._made("control_characters", event, value, R.BAD_JSON)

    # --- CQL-looking strings ------------------------------------------------------------
    def _k_cql_strings(self, kafka_ms: int) -> Hostile:
        event = self._base(kafka_ms)
        text = self.rng.choice(CQL)
        return self._made("cql_strings", event, _json({**event, "video_id": text}), R.BAD_VIDEO_ID)

    def _k_cql_strings_valid(self, kafka_ms: int) -> Hostile:
        """CQL in the free-text fields of a valid event: counted, and harmless."""
        event = self._base(kafka_ms)
        text = self.rng.choice(CQL)
        return self._made("cql_strings_valid", event,
                          _json({**event, "event_id": f"{text[:40]}{uuid.UUID(int=self.rng.getrandbits(128)).hex[:20]}",
                                 "user_id": text}), None)

    # --- extreme timestamps -------------------------------------------------------------
    def _k_extreme_timestamps(self, kafka_ms: int) -> Hostile:
        event = self._base(kafka_ms)
        when, reason = self.rng.choice([
            ("9999-12-31T23:59:59.999Z", R.FUTURE_EVENT_TIME), (R.MAX_EPOCH_MILLIS, R.FUTURE_EVENT_TIME),
            ("0000-12-31T23:59:59Z", R.BAD_EVENT_TIME), ("10000-01-01T00:00:00Z", R.BAD_EVENT_TIME),
            ("0001-01-01T00:00:00+00:01", R.BAD_EVENT_TIME), ("9999-12-31T23:59:59-00:01", R.BAD_EVENT_TIME),
            ("2026-02-29T00:00:00Z", R.BAD_EVENT_TIME), ("2026-11-21T24:00:00Z", R.BAD_EVENT_TIME),
            (_rfc3339(kafka_ms + R.MAX_FUTURE_SECONDS * 1000 + 1), R.FUTURE_EVENT_TIME),
        ])
        return self._made("extreme_timestamps", event, _json({**event, "event_time": when}), reason)

    def _k_year_one(self, kafka_ms: int) -> Hostile:
        """Year 1 is inside the contract's range: a valid (very late) event, never a crash."""
        event = self._base(kafka_ms)
        when = self.rng.choice(["0001-01-01T00:00:00Z", R.MIN_EPOCH_MILLIS, "0001-01-01T00:00:59.999999Z"])
        return self._made("year_one", event, _json({**event, "event_time": when}), None)


# How many of each kind in a run of N hostile records; oversized ones are rarer (each is
# up to a megabyte), the rest share the remainder evenly.
OVERSIZED_SHARE = 0.002


def hostile_records(count: int, seed: int, videos: list[str], size_limit: int,
                    first_kafka_ms: int, spacing_ms: int) -> list[tuple[int, Hostile]]:
    """`count` hostile records with their Kafka timestamps, kinds interleaved at random."""
    rng = random.Random(seed)
    factory = HostileFactory(rng, videos, size_limit)
    kinds = [kind for kind in factory.kinds if kind != "oversized"]
    oversized = max(1, int(count * OVERSIZED_SHARE))
    plan = ["oversized"] * oversized + [kinds[i % len(kinds)] for i in range(count - oversized)]
    rng.shuffle(plan)
    records = []
    for index, kind in enumerate(plan):
        kafka_ms = first_kafka_ms + index * spacing_ms
        records.append((kafka_ms, factory.build(kind, kafka_ms)))
    return records
