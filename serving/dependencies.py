"""What routes get injected: the store the app was built with (tests build theirs).

Routes are ``async def``: the store never blocks (it awaits the driver's callbacks), so a
request needs no worker thread; the dependency is async for the same reason (FastAPI runs
a plain ``def`` dependency on the thread pool).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.store import ViewStore


async def get_store(request: Request) -> ViewStore:
    return request.app.state.store


Store = Annotated[ViewStore, Depends(get_store)]
