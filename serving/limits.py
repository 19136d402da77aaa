"""The API's limits: the code's defaults, or the environment's (``Limits.from_knobs``, of the
``settings.environment.ServingKnobs`` the app factory reads; docs/configuration.md lists the
variables)."""

from __future__ import annotations

from dataclasses import dataclass

from settings.environment import TOP_ROWS_STORED, ServingKnobs


@dataclass(frozen=True)
class Limits:
    max_range_days: int = 31
    max_top_limit: int = TOP_ROWS_STORED
    default_top_limit: int = 10
    cache_entries: int = 20_000
    read_timeout_s: float = 5.0
    speculative_s: float = 0.2  # a read unanswered this long is sent to the next node too; 0: never
    promotion_refresh_s: float = 0.5  # promoted versions read again when older (serving.store)
    speed_cache_s: float = 0.25  # a provisional day's partition kept at most this long; 0: never
    rate_limit_rps: float = 1000.0  # per client and worker (serving.rate_limit); 0: no limit
    rate_limit_burst: int = 2000
    live_partitions: int = 100_000  # provisional partitions held, kept current by the cell feed; 0: none
    live_max_lag_s: float = 1.0  # further behind the feed: answers from Cassandra reads (serving.live)

    @classmethod
    def from_knobs(cls, knobs: ServingKnobs) -> "Limits":
        return cls(max_range_days=knobs.max_range_days, max_top_limit=knobs.max_top_limit,
                   cache_entries=knobs.serving_cache_entries, read_timeout_s=knobs.serving_timeout_s,
                   speculative_s=knobs.serving_speculative_s,
                   promotion_refresh_s=knobs.serving_promotion_refresh_s,
                   speed_cache_s=knobs.serving_speed_cache_s,
                   rate_limit_rps=knobs.rate_limit_rps, rate_limit_burst=knobs.rate_limit_burst,
                   live_partitions=knobs.serving_live_partitions, live_max_lag_s=knobs.serving_live_max_lag_s)
