"""GET /v1/models (and one model by id), and vLLM's endpoints that load and unload LoRA adapters."""

from __future__ import annotations

from server.adapter_registry import LoadAdapterRequest, UnloadAdapterRequest
from server.endpoints.common import Preparer, Service, guarded_router
from server.formats.models import ModelCard, ModelList
from server.service import SharpeningService

router = guarded_router("/v1")


@router.get("/models", response_model=ModelList)
async def list_models(service: Service) -> ModelList:
    """The served model, then each LoRA adapter served on it."""
    cards = [ModelCard(id=name, max_model_len=service.max_model_len, parent=parent)
             for name, parent in service.served_models()]
    return ModelList(data=cards)


@router.get("/models/{model_id:path}", response_model=ModelCard)
async def retrieve_model(model_id: str, service: Service, prepare: Preparer) -> ModelCard:
    """A served model or adapter by its id; any other id is a 404."""
    adapter = prepare.check_model(model_id)
    return model_card(service, adapter or service.model_name)


@router.post("/load_lora_adapter", response_model=ModelCard)
async def load_lora_adapter(body: LoadAdapterRequest, service: Service) -> ModelCard:
    """Serve a LoRA adapter from now on, without a restart (vLLM's endpoint; needs --adapter-slots)."""
    await service.adapters.load(body)
    return model_card(service, body.lora_name)


@router.post("/unload_lora_adapter", response_model=ModelCard)
async def unload_lora_adapter(body: UnloadAdapterRequest, service: Service) -> ModelCard:
    """Stop serving an adapter loaded at run time; running requests that use it finish."""
    card = model_card(service, body.lora_name)
    await service.adapters.unload(body)
    return card


def model_card(service: SharpeningService, name: str) -> ModelCard:
    """The card of the served model or of one of its adapters."""
    parents = dict(service.served_models())
    return ModelCard(id=name, max_model_len=service.max_model_len, parent=parents.get(name))
