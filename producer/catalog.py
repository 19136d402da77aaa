"""The video catalog the generator draws from: stable ids and Zipf popularity.

Video ids depend only on the video's popularity rank, not on the seed, so every run (and
the billing catalog built for reconciliation) sees the same ids: ``video_ids(n)[0]`` is
always the hottest video.
"""

from __future__ import annotations

import base64
import hashlib
import itertools


def video_id(rank: int) -> str:
    """An 11-character URL-safe id, like the ones video sites use."""
    digest = hashlib.blake2b(f"viewcount-video-{rank}".encode(), digest_size=8).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def video_ids(count: int) -> list[str]:
    ids = [video_id(rank) for rank in range(count)]
    if len(set(ids)) != count:  # 64-bit ids: a collision would silently merge two videos
        raise RuntimeError("video id collision; change the id scheme")
    return ids


def zipf_cumulative_weights(count: int, exponent: float, hot_share: float | None = None) -> list[float]:
    """Cumulative weights of ranks 1..count under Zipf(exponent), for ``random.choices``.
    ``hot_share``: the hottest video takes that share of all views instead of its Zipf
    share (a viral video); the others keep their Zipf proportions."""
    weights = [rank ** -exponent for rank in range(1, count + 1)]
    if hot_share is not None and count > 1:
        weights[0] = sum(weights[1:]) * hot_share / (1.0 - hot_share)
    return list(itertools.accumulate(weights))


def zipf_top_share(count: int, exponent: float, top: int = 1) -> float:
    """Expected share of all views that the ``top`` hottest videos get."""
    cumulative = zipf_cumulative_weights(count, exponent)
    return cumulative[min(top, count) - 1] / cumulative[-1]
