"""Write a model directory with the embedded model's architecture and tokenizer but random weights.

For the GPU check (gpu_check.sh): the device machine reaches no registry and takes at most 64 MiB
of files, less than the embedded model's weights, so the check trains a same-shape model there.
Step times and memory are the real model's; rewards and losses are not meaningful.

    python -m benchmarks.amortize.random_model CONFIG_DIR OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main(source: Path, out: Path) -> None:
    """Copy everything but the weights from `source`, then save freshly initialised weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    shutil.copytree(source, out, dirs_exist_ok=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source), dtype=torch.float32)
    model.save_pretrained(out)
    print(f"{out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, random weights")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
