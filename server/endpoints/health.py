"""The operator's endpoints, with no API key: /health, /metrics and /version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from server import __version__
from server.endpoints.common import ERROR_RESPONSES, Service
from server.metrics import Metrics
from server.precision import Precision
from server.supervisor import EngineSupervisor

router = APIRouter()


@router.get("/health", responses={503: ERROR_RESPONSES[503]})
async def health(request: Request) -> JSONResponse:
    """200 while the engine serves, 503 with the reason otherwise; in upstream mode, each upstream's state."""
    supervisor: EngineSupervisor = request.app.state.supervisor
    state = supervisor.health()  # 503 (EngineUnavailable) while not serving
    precision: Precision = request.app.state.precision
    scores = {"dtype": precision.dtype, "dtype_reason": precision.reason,
              "tie_tolerance": request.app.state.settings.tie_tolerance}
    return JSONResponse({"status": "ok"} | scores | state)


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus metrics of this app."""
    registry: Metrics = request.app.state.metrics
    return PlainTextResponse(registry.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/version")
async def version(service: Service) -> dict[str, str]:
    """Server version and the served model."""
    return {"version": __version__, "model": service.model_name}
