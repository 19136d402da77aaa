"""The views routes' kept answers (``serving.answers``) and what drops them: a promotions
snapshot that is another one, a pushed cell or an eviction of a held partition an answer
was built from (``serving.live`` tells them), the feed left."""

from __future__ import annotations

import datetime as dt

from serving.answers import Answers
from serving.live import LiveFeed
from tests.support.live import DAY, cell, following, row

PROMOTED = {DAY - dt.timedelta(days=1): 1}


def key(video: str, start: str = "2031-05-06T00:00:00Z") -> tuple:
    return ("views", video, start, "2031-05-07T00:00:00Z")


def watched(max_partitions: int = 10) -> tuple[LiveFeed, Answers]:
    feed, answers = following(max_partitions), Answers(100)
    feed.watch(answers)
    return feed, answers


def hold(feed: LiveFeed, video: str) -> None:
    token = feed.begin_fill((video, DAY))
    feed.fill((video, DAY), [row(1, 5, 100)], token)


def test_an_answer_is_kept_for_the_snapshot_it_was_built_with():
    answers = Answers(100)
    assert answers.get(key("v"), PROMOTED) is None
    answers.put(key("v"), b"built", PROMOTED, [])
    assert answers.get(key("v"), PROMOTED) == b"built"
    assert answers.get(key("v", start="2031-05-06T01:00:00Z"), PROMOTED) is None  # another range
    assert (answers.hits, answers.misses) == (1, 2)


def test_another_snapshot_drops_every_answer_and_a_late_put_with_the_old_one_is_refused():
    answers = Answers(100)
    answers.get(key("v"), PROMOTED)
    answers.put(key("v"), b"old", PROMOTED, [])
    promoted_again = dict(PROMOTED)  # equal, but another read's: a change, by the store's rule
    assert answers.get(key("v"), promoted_again) is None
    answers.put(key("w"), b"built with the old snapshot", PROMOTED, [])
    assert answers.get(key("w"), promoted_again) is None
    assert len(answers) == 0


def test_a_pushed_cell_drops_the_answers_built_from_its_partition_only():
    feed, answers = watched()
    hold(feed, "v")
    hold(feed, "w")
    final_only = ("views", "v", "2031-05-05T00:00:00Z", "2031-05-06T00:00:00Z")
    for video in ("v", "w"):
        answers.get(key(video), PROMOTED)
        answers.put(key(video), video.encode(), PROMOTED, [(video, DAY)])
    answers.put(final_only, b"final", PROMOTED, [])
    feed._apply([cell("v", 2, 4, 200)], feed._epoch)
    assert answers.get(key("v"), PROMOTED) is None
    assert answers.get(key("w"), PROMOTED) == b"w"
    assert answers.get(final_only, PROMOTED) == b"final"  # built from no held partition
    feed._apply([cell("nobody-held", 2, 4, 200)], feed._epoch)
    assert answers.get(key("w"), PROMOTED) == b"w"


def test_an_evicted_partition_drops_its_videos_answers():
    feed, answers = watched(max_partitions=1)
    hold(feed, "v")
    answers.get(key("v"), PROMOTED)
    answers.put(key("v"), b"v", PROMOTED, [("v", DAY)])
    hold(feed, "w")  # "v" out for room: its later cells would not be applied
    assert feed.get(("v", DAY)) is None
    assert answers.get(key("v"), PROMOTED) is None


def test_leaving_the_feed_drops_every_answer_and_a_partition_not_held_is_not_current():
    feed, answers = watched()
    hold(feed, "v")
    held = feed.get(("v", DAY))
    assert feed.holds(("v", DAY), held)
    answers.get(key("v"), PROMOTED)
    answers.put(key("v"), b"v", PROMOTED, [("v", DAY)])
    feed._leave("behind", "test")
    assert not feed.holds(("v", DAY), held)
    len(feed)  # the loop's thread sees the stop
    assert answers.get(key("v"), PROMOTED) is None


def test_the_bound_drops_the_least_recently_asked_and_forgets_what_it_was_built_from():
    answers = Answers(2)
    for video in ("a", "b"):
        answers.get(key(video), PROMOTED)
        answers.put(key(video), video.encode(), PROMOTED, [(video, DAY)])
    assert answers.get(key("a"), PROMOTED) == b"a"  # "b" is now the least recently asked
    answers.put(key("c"), b"c", PROMOTED, [("c", DAY)])
    assert answers.get(key("b"), PROMOTED) is None and len(answers) == 2
    assert ("b", DAY) not in answers._built_from
    answers.changed(("b", DAY))  # nothing left of it to drop
    answers.changed(("a", DAY))
    assert answers.get(key("a"), PROMOTED) is None and answers.get(key("c"), PROMOTED) == b"c"
    answers.put(key("c"), b"c again", PROMOTED, [("c", DAY)])  # put again: kept once
    assert len(answers) == 1 and answers._built_from == {("c", DAY): {key("c")}}
