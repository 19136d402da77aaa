"""Kafka records to view events: parsing and validation with reason codes.

``parse_events`` never throws under ANSI mode. A record that breaks a rule becomes a row
with a ``reason`` (see ``counting.reasons``), never an exception that stops a stream.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from counting import reasons as R
from counting.event_time import (
    MICROS_PER_SECOND,
    epoch_micros_from_rfc3339,
    event_time_from_epoch_micros,
    event_time_from_epoch_millis,
    whole_text_regex,
)

EVENT_COLUMNS = (
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "key",
    "value",
    "event_id",
    "video_id",
    "event_time",
    "user_id",
    "reason",
)

# schema_of_variant names for a JSON integer; fractions and huge numbers are DECIMAL/DOUBLE.
JSON_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INT", "BIGINT")
JSON_STRING = "STRING"
JSON_NULL = "VOID"
FIELDS = ("event_id", "video_id", "event_time", "user_id")
# The only characters the JSON grammar (and Spark's parser) allows around a value.
JSON_WHITESPACE = " \t\n\r"
# Spark's JSON parser allows 1,000 levels of nesting, so the wrapped parse rejects a value
# 1,000 levels deep and a single parse would not; such a value has at least 2,000 bytes.
SHALLOW_VALUE_BYTES = 1_000
# '{', no '}', then '}' at the very end (one regex pass beats instr + char_length).
ONE_FLAT_OBJECT_REGEX = r"^\{[^}]*+\}\z"
VIDEO_ID_REGEX = whole_text_regex(R.VIDEO_ID_PATTERN)

# The layout most clients send, byte for byte: no whitespace, the fields in this order,
# strings without escapes or control characters, event_time a JSON string or a positive
# integer of at most 18 digits (a BIGINT to the JSON parser), user_id a string, null or
# absent. A text of this form is one strict JSON object whose string values are the bytes
# between their quotes, so its fields are read by position instead of by the JSON parser
# and the typed field extraction, which cost most of the parse (docs/benchmarks.md). The
# same rules then judge the fields, whichever way they were read.
_PLAIN_STRING = r'"[^"\\\x00-\x1f]*+"'
CANONICAL_REGEX = (
    r'^\{"event_id":' + _PLAIN_STRING + r',"video_id":' + _PLAIN_STRING
    + r',"event_time":(?:' + _PLAIN_STRING + r'|[1-9][0-9]{0,17})'
    + r'(?:,"user_id":(?:' + _PLAIN_STRING + r'|null))?\}\z'
)


def json_type(variant: Column) -> Column:
    """JSON type of a variant: 'STRING', 'BIGINT', 'DECIMAL(p,s)', 'DOUBLE', 'BOOLEAN',
    'OBJECT<...>', 'ARRAY<...>', 'VOID' for JSON null; NULL for an absent field."""
    return F.schema_of_variant(variant)


def _field_type(variant: Column) -> Column:
    """json_type for a scalar; just 'OBJECT' or 'ARRAY' for a container.

    schema_of_variant describes a container's whole content, recursively, and a field
    nested about 1,000 levels deep overflows the task thread's stack there: one poison
    record would fail the job. No rule needs more than "it is an object or an array", and
    these two casts never look inside one.
    """
    is_object = F.try_variant_get(variant, "$", "struct<>").isNotNull()
    is_array = F.try_variant_get(variant, "$", "array<boolean>").isNotNull()
    return F.when(is_object, F.lit("OBJECT")).when(is_array, F.lit("ARRAY")).otherwise(json_type(variant))


def _wrapped_document(value_text: Column) -> Column:
    """try_parse_json stops after the first complete value and ignores what follows
    ('{"a":1} x' parses). Parsing the text as an array element and as an object member
    closes that gap: after a complete value an array accepts only ',' or ']', an object
    only ',' or '}', and no trailing text satisfies both. The wrappers add one nesting
    level, so documents nested deeper than 999 levels are bad JSON.
    """
    as_array_element = F.try_parse_json(F.concat(F.lit("["), value_text, F.lit("]")))
    as_object_member = F.try_parse_json(F.concat(F.lit('{"v":'), value_text, F.lit("}")))
    return F.when(as_object_member.isNotNull(), F.try_variant_get(as_array_element, "$[0]", "variant"))


def json_document(value_text: Column) -> Column:
    """The value as a variant when it is exactly one strict JSON document, else NULL.

    Nearly every record is one flat object with nothing around it, and for those one parse
    of the text is exact, not three: when the text starts with '{' and its only '}' is its
    last character, an object that parses can only end there, so nothing trails it. Only
    for short values, since the wrapped parse's extra nesting level must still reject
    documents 1,000 levels deep. Any other text takes the wrapped parse.
    """
    is_one_flat_object = (F.octet_length(value_text) <= SHALLOW_VALUE_BYTES) & F.regexp_like(
        value_text, F.lit(ONE_FLAT_OBJECT_REGEX)
    )
    return F.when(is_one_flat_object, F.try_parse_json(value_text)).otherwise(_wrapped_document(value_text))


def is_valid_event_id(event_id: Column) -> Column:
    """True for an event_id of 1..64 characters (code points, not bytes)."""
    return F.char_length(event_id).between(R.MIN_EVENT_ID_CHARS, R.MAX_EVENT_ID_CHARS)


def is_valid_video_id(video_id: Column) -> Column:
    """True for a video_id of 1..64 characters of [A-Za-z0-9_-]."""
    return F.regexp_like(video_id, F.lit(VIDEO_ID_REGEX))


def _is_present(field_type: Column) -> Column:
    return field_type.isNotNull() & (field_type != JSON_NULL)


# Each step below is its own projection, and each column it adds is used more than once by
# the next one, so Spark's optimizer keeps them apart (it only inlines a projection whose
# costly columns are used once). Inlined, the expressions were copied into each consumer
# and evaluated several times per record, also where subexpression elimination does not
# reach (inside CASE WHEN branches).


def _with_document(records: DataFrame) -> DataFrame:
    """Decode and parse the value, but only when it is small enough and valid UTF-8.

    A NULL value (a Kafka tombstone) passes the size and UTF-8 rules and fails as bad_json.
    """
    checked = records.select(
        "topic",
        "partition",
        "offset",
        F.col("timestamp").alias("kafka_timestamp"),
        "key",
        "value",
        F.col("value").cast("string").alias("value_text"),
        F.coalesce(F.octet_length("value") <= R.MAX_VALUE_BYTES, F.lit(True)).alias("is_small_enough"),
        F.coalesce(F.is_valid_utf8(F.col("value").cast("string")), F.lit(True)).alias("is_utf8"),
    )
    is_decodable = F.col("is_small_enough") & F.col("is_utf8")
    return checked.withColumn(
        "is_canonical", is_decodable & F.regexp_like("value_text", F.lit(CANONICAL_REGEX))
    ).withColumns({
        # split at '"': a canonical text's pieces sit at fixed places (_canonical_fields).
        "pieces": F.when(F.col("is_canonical"), F.split("value_text", '"')),
        "document": F.when(is_decodable & ~F.col("is_canonical"), json_document(F.col("value_text"))),
    })


def _canonical_fields() -> dict[str, Column]:
    """Field texts and JSON types of a canonical value, from its pieces between quotes:
    {, event_id, :, E, ',', video_id, :, V, ',', event_time, then either
    ':', T, and ',' user_id ':' U '}' / ',' user_id ':null}' / '}' (a string time), or
    ':digits,' user_id ':' U '}' / ':digits,' user_id ':null}' / ':digits}' (an integer).
    1-based, as element_at counts."""
    pieces = F.col("pieces")
    time_is_text = F.element_at(pieces, 11) == ":"
    user_key = F.when(time_is_text, 14).otherwise(12)
    has_user = F.try_element_at(pieces, user_key) == "user_id"
    user_is_text = has_user & (F.try_element_at(pieces, user_key + 1) == ":")
    digits = F.regexp_extract(F.element_at(pieces, 11), r"^:([0-9]+)", 1)
    return {
        "event_id": F.element_at(pieces, 4),
        "video_id": F.element_at(pieces, 8),
        "event_time_text": F.when(time_is_text, F.element_at(pieces, 12)),
        "event_time_millis": F.when(~time_is_text, digits.try_cast("bigint")),
        "event_time_type": F.when(time_is_text, F.lit(JSON_STRING)).otherwise(F.lit("BIGINT")),
        "user_id": F.when(user_is_text, F.try_element_at(pieces, user_key + 2)),
        "user_id_type": F.when(user_is_text, F.lit(JSON_STRING)).when(has_user, F.lit(JSON_NULL)),
    }


def _with_field_types(documents: DataFrame) -> DataFrame:
    """Pull out each field as a variant, with its JSON type.

    A parsed document is an object exactly when its first non-whitespace character is '{'
    (cheaper than schema_of_variant, which describes the whole document). A field of a
    document that is not an object is NULL: variant_get finds no such path.
    """
    starts_with_brace = F.ltrim("value_text", F.lit(JSON_WHITESPACE)).startswith("{")
    canonical = F.col("is_canonical")
    fields = {f"{name}_json": F.try_variant_get("document", f"$.{name}", "variant") for name in FIELDS}
    fast = _canonical_fields()
    fast_types = {"event_id": F.lit(JSON_STRING), "video_id": F.lit(JSON_STRING),
                  "event_time": fast["event_time_type"], "user_id": fast["user_id_type"]}
    types = {f"{name}_type": F.when(canonical, fast_types[name]).otherwise(_field_type(F.col(f"{name}_json")))
             for name in FIELDS}
    return documents.withColumns(
        {"is_object": canonical | (F.col("document").isNotNull() & starts_with_brace), **fields}
    ).withColumns(types)


def _string_field(name: str, canonical: Column) -> Column:
    """The field as a string when its JSON type is string, else NULL (no lenient casts)."""
    is_string = F.col(f"{name}_type") == JSON_STRING
    return F.when(F.col("is_canonical"), canonical).when(
        is_string, F.try_variant_get(f"{name}_json", "$", "string"))


def _with_field_values(typed: DataFrame) -> DataFrame:
    """Typed values; a field that breaks its rule is NULL, whatever the other fields are."""
    is_integer_time = F.col("event_time_type").isin(*JSON_INTEGER_TYPES)
    fast = _canonical_fields()
    texts = typed.withColumns(
        {
            "event_id_text": _string_field("event_id", fast["event_id"]),
            "video_id_text": _string_field("video_id", fast["video_id"]),
            "event_time_text": _string_field("event_time", fast["event_time_text"]),
            "event_time_millis": F.when(F.col("is_canonical"), fast["event_time_millis"]).when(
                is_integer_time, F.try_variant_get("event_time_json", "$", "bigint")),
            "user_id": _string_field("user_id", fast["user_id"]),
        }
    )
    event_id, video_id = F.col("event_id_text"), F.col("video_id_text")
    checked = texts.withColumns(
        {
            "event_id": F.when(is_valid_event_id(event_id), event_id),
            "video_id": F.when(is_valid_video_id(video_id), video_id),
            "event_time_micros": epoch_micros_from_rfc3339(F.col("event_time_text")),
        }
    )
    as_text = event_time_from_epoch_micros(F.col("event_time_micros"))
    as_millis = event_time_from_epoch_millis(F.col("event_time_millis"))
    event_time = F.when(F.col("event_time_type") == JSON_STRING, as_text).when(is_integer_time, as_millis)
    return checked.withColumn("event_time", event_time)


def _rule_checks(max_future_seconds: int) -> dict[str, Column]:
    """For each reason, the condition a record must meet to escape it."""
    ahead_of_kafka_micros = F.unix_micros("event_time") - F.unix_micros("kafka_timestamp")
    user_id_type = F.col("user_id_type")
    return {
        R.TOO_LARGE: F.col("is_small_enough"),
        R.INVALID_UTF8: F.col("is_utf8"),
        R.BAD_JSON: F.col("is_canonical") | F.col("document").isNotNull(),
        R.NOT_OBJECT: F.col("is_object"),
        R.MISSING_EVENT_ID: _is_present(F.col("event_id_type")),
        R.BAD_EVENT_ID: F.col("event_id").isNotNull(),
        R.MISSING_VIDEO_ID: _is_present(F.col("video_id_type")),
        R.BAD_VIDEO_ID: F.col("video_id").isNotNull(),
        R.MISSING_EVENT_TIME: _is_present(F.col("event_time_type")),
        R.BAD_EVENT_TIME: F.col("event_time").isNotNull(),
        R.BAD_USER_ID: ~_is_present(user_id_type) | (user_id_type == JSON_STRING),
        R.FUTURE_EVENT_TIME: ahead_of_kafka_micros <= max_future_seconds * MICROS_PER_SECOND,
    }


def _rejection_reason(max_future_seconds: int = R.MAX_FUTURE_SECONDS) -> Column:
    """The first reason in REASONS whose rule the record breaks, NULL for a valid event.

    A check that comes out NULL counts as broken, so an unforeseen NULL rejects a record
    instead of letting it be counted.
    """
    checks = _rule_checks(max_future_seconds)
    reason = None
    for code in R.REASONS:
        breaks_rule = ~F.coalesce(checks[code], F.lit(False))
        reason = F.when(breaks_rule, F.lit(code)) if reason is None else reason.when(breaks_rule, F.lit(code))
    return reason


def parse_events(max_future_seconds: int = R.MAX_FUTURE_SECONDS) -> Callable[[DataFrame], DataFrame]:
    """Transform Kafka source rows (key, value, topic, partition, offset, timestamp) into
    view events with a reason code: ``records.transform(parse_events())``.

    Output columns are EVENT_COLUMNS; ``reason`` is NULL for a valid event, ``value`` is
    always the original bytes, and the parsed fields may be NULL on invalid rows.
    """

    def parse(records: DataFrame) -> DataFrame:
        return (
            records.transform(_with_document)
            .transform(_with_field_types)
            .transform(_with_field_values)
            .withColumn("reason", _rejection_reason(max_future_seconds))
            .select(*EVENT_COLUMNS)
        )

    return parse


def parse_archived_records(max_future_seconds: int = R.MAX_FUTURE_SECONDS) -> Callable[[DataFrame], DataFrame]:
    """``parse_events`` for records in the archive's layout, where Kafka's ``timestamp`` is
    kept as ``kafka_timestamp`` (the archive, and records read back from Kafka beside it):
    ``archived.transform(parse_archived_records())``. The batch, the reconciler's evidence
    and the quality checks parse archived records with it, as the speed layer parses its own.
    """
    parse = parse_events(max_future_seconds)

    def parse_archived(records: DataFrame) -> DataFrame:
        kafka_columns = ("topic", "partition", "offset", F.col("kafka_timestamp").alias("timestamp"), "key", "value")
        return records.select(*kafka_columns).transform(parse)

    return parse_archived


def valid_events(events: DataFrame) -> DataFrame:
    """Parsed events that count (reason is NULL)."""
    return events.filter(F.col("reason").isNull())


def invalid_events(events: DataFrame) -> DataFrame:
    """Parsed records that never count and go to the dead-letter topic."""
    return events.filter(F.col("reason").isNotNull())
