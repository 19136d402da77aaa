"""``/v1/reconciliations/{day}``: the nightly reconciliation summary of a day.

The reconcile layer writes the summaries; until it has written one for a day (or exists
at all) the answer is 404 "no reconciliation for day". ``ViewStore.reconciliation`` is
the one place that knows where summaries are stored. The summary is answered as the
reconciler wrote it (it owns that shape); the model documents it in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from serving.dependencies import Store
from serving.errors import NotFound
from serving.models import ERRORS, Error, ReconciliationSummary
from serving.ranges import parse_day

router = APIRouter(prefix="/v1/reconciliations", tags=["reconciliations"])


@router.get(
    "/{day}", response_model=ReconciliationSummary,
    responses={**ERRORS, 404: {"model": Error, "description": "no reconciliation for day"}},
)
async def reconciliation(
    day: Annotated[str, Path(description="UTC day, YYYY-MM-DD", examples=["2026-11-25"],
                             json_schema_extra={"format": "date"})],
    store: Store,
) -> JSONResponse:
    asked = parse_day(day)
    summary = await store.reconciliation(asked)
    if summary is None:
        raise NotFound(f"no reconciliation for day {asked.isoformat()}")
    return JSONResponse(summary)
