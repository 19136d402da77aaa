"""``/healthz``: 200 when Cassandra answers a query, else 503 (with the reason)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.dependencies import Store
from serving.models import Error, Health
from serving.store import StoreUnavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health,
            responses={503: {"model": Error, "description": "Cassandra unreachable"}})
async def health(store: Store):
    try:
        await store.ping()
    except StoreUnavailable as error:
        return JSONResponse(
            {"error": str(error), "status": "unavailable", "cassandra": "down"}, status_code=503)
    return Health(status="ok", cassandra="up")
