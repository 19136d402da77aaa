"""``/healthz``: 200 when Cassandra answers a query, else 503 (with the reason); both say
whether provisional days are answered from memory kept current by the cell feed
(``live``: ``serving.live``) or from Cassandra reads, and why."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.dependencies import Store
from serving.models import Error, Health, LiveStatus
from serving.store import StoreUnavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health,
            responses={503: {"model": Error, "description": "Cassandra unreachable"}})
async def health(store: Store):
    live = LiveStatus(state=store.live.state, detail=store.live.detail, lag_seconds=round(store.live.lag_s, 3),
                      partitions=len(store.live))
    try:
        await store.ping()
    except StoreUnavailable as error:
        return JSONResponse({"error": str(error), "status": "unavailable", "cassandra": "down",
                             "live": live.model_dump()}, status_code=503)
    return Health(status="ok", cassandra="up", live=live)
