"""/v1/top answers the promoted batch version's ranking; a day not final yet is a 404."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support.serving import write_top

pytestmark = pytest.mark.integration

DAY = dt.date(2033, 1, 20)


@pytest.fixture(scope="module")
def rankings(cassandra_session):
    first = [(f"video-{i:04d}", 100_000 - 7 * i) for i in range(1000)]
    second = [(f"other-{i:02d}", 500 - i) for i in range(30)]
    write_top(cassandra_session, DAY, 1, first)
    write_top(cassandra_session, DAY, 2, second)
    return {1: first, 2: second}


def top(api, day, **params):
    response = api.get("/v1/top", params={"day": day, **params})
    assert response.status_code == 200, response.text
    return response.json()


def as_json(ranking):
    return [{"video_id": video_id, "views": views} for video_id, views in ranking]


def test_top_of_a_final_day_is_its_promoted_ranking(api, served_promotions, rankings):
    served_promotions.promote(DAY, 1)
    assert top(api, DAY.isoformat(), limit=3) == {"day": DAY.isoformat(), "videos": as_json(rankings[1][:3])}
    assert top(api, DAY.isoformat())["videos"] == as_json(rankings[1][:10])  # default limit 10
    assert top(api, DAY.isoformat(), limit=1000)["videos"] == as_json(rankings[1])


def test_top_follows_the_promoted_version(api, served_promotions, rankings):
    served_promotions.promote(DAY, 2)
    assert top(api, DAY.isoformat(), limit=100)["videos"] == as_json(rankings[2])  # only 30 exist
    served_promotions.promote(DAY, 1)
    assert top(api, DAY.isoformat(), limit=2)["videos"] == as_json(rankings[1][:2])


def test_a_day_without_a_promoted_batch_is_404_not_final_yet(api, served_promotions, rankings):
    served_promotions.unpromote(DAY)
    response = api.get("/v1/top", params={"day": DAY.isoformat()})
    assert response.status_code == 404
    assert response.json() == {"error": f"day {DAY.isoformat()} is not final yet: no promoted batch"}
