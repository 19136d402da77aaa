"""Every error the API answers is JSON ``{"error": "..."}``.

Bad input is a 400 (FastAPI's own 422 validation body included), an unknown path or a
day without data a 404, Cassandra not answering a 503; a 500 only for a real server
fault, whose details stay in the server log.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from serving.ranges import BadRequest
from serving.store import StoreUnavailable

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """A well-formed request for something that does not exist (yet): 404."""


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _describe(error: RequestValidationError) -> str:
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("query", "path"))
        problems.append(f"{where}: {problem.get('msg', 'invalid')}" if where else problem.get("msg", ""))
    return "; ".join(problems) or "invalid request"


async def _bad_request(request: Request, error: BadRequest) -> JSONResponse:
    return error_response(400, str(error))


async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
    return error_response(400, _describe(error))


async def _not_found(request: Request, error: NotFound) -> JSONResponse:
    return error_response(404, str(error))


async def _http(request: Request, error: HTTPException) -> JSONResponse:
    message = error.detail if isinstance(error.detail, str) else str(error.detail)
    response = error_response(error.status_code, message)
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


def unavailable_response(error: StoreUnavailable) -> JSONResponse:
    return JSONResponse({"error": str(error)}, status_code=503, headers={"Retry-After": "1"})


async def _unavailable(request: Request, error: StoreUnavailable) -> JSONResponse:
    return unavailable_response(error)


async def _server_fault(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BadRequest, _bad_request)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(Exception, _server_fault)
