"""The built images start from their own entrypoint and serve a chat completion (`make image-test`).

`make image-test` builds the full and the upstream image (podman here; a stand-in base made with
debootstrap, since no registry is reachable), then runs this. `podman run` cannot create its
cgroups on these machines, so each image runs as a chroot of a container's mounted filesystem,
with the image's entrypoint, environment and working directory, on the host's network.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from benchmarks.common.servers import WHETSTONE_CPU_ENV, WHETSTONE_CPU_FLAGS, vllm_command
from clients.processes import free_port, spawned

TAG = os.environ.get("TAG", "whetstone")
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
# pseudo-filesystems the engine needs, bound into the chroot
BINDS = ("/proc", "/sys", "/dev", "/dev/shm")


def podman(*args: str) -> str:
    """Run podman; its output."""
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def image_root(image: str) -> Iterator[Path]:
    """A writable root filesystem of a fresh container of `image`, with /proc, /sys and /dev bound."""
    container = podman("create", image)
    with ExitStack() as stack:
        stack.callback(podman, "rm", "--force", container)
        root = Path(podman("mount", container))
        stack.callback(podman, "unmount", container)
        for path in BINDS:
            target = root / path.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", path, str(target)], check=True)
            stack.callback(subprocess.run, ["umount", "--lazy", str(target)], check=True)
        yield root


def entrypoint_command(image: str, root: Path, *args: str) -> list[str]:
    """The image's entrypoint and `args` under chroot, with only the image's environment."""
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image))
    workdir = config.get("WorkingDir") or "/"
    command = [*(config.get("Entrypoint") or []), *args]
    return ["chroot", str(root), "/usr/bin/env", "-i", *config.get("Env", []),
            "sh", "-c", f'cd {workdir} && exec "$@"', "sh", *command]


@contextmanager
def served(image: str, log: Path, *args: str) -> Iterator[str]:
    """The image's entrypoint serving on a free loopback port; its base URL."""
    port = free_port()
    with image_root(image) as root:
        command = entrypoint_command(image, root, "--port", str(port), *args)
        with spawned(command, f"http://127.0.0.1:{port}", log, startup_timeout=600) as url:
            yield url


def chat(url: str) -> str:
    """A sharpened chat completion's answer."""
    body = {"messages": HELLO, "max_tokens": 16, "sharpening": {"n": 2}}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["choices"][0]["message"]["content"])


def test_the_full_image_serves_its_embedded_model(tmp_path: Path) -> None:
    flags = ("--enforce-eager", "--kv-cache-gib", "1", "--max-model-len", "2048")
    with served(TAG, tmp_path / "full.log", *flags) as url:
        assert httpx.get(f"{url}/v1/models").json()["data"][0]["id"] == "SmolLM2-135M-Instruct"
        assert chat(url)


@pytest.fixture
def vllm_url(tmp_path: Path) -> Iterator[str]:
    """vLLM's own OpenAI server on the embedded model (this machine's install, eager)."""
    from server.embedded import prepare_embedded_model

    port = free_port()
    command = vllm_command(str(prepare_embedded_model()), port, kv_cache_bytes=1024**3, enforce_eager=True,
                           flags=[*WHETSTONE_CPU_FLAGS, "--max-model-len", "2048"])
    with spawned(command, f"http://127.0.0.1:{port}", tmp_path / "vllm.log", env=WHETSTONE_CPU_ENV) as url:
        yield url


def test_the_upstream_image_serves_in_front_of_vllm(tmp_path: Path, vllm_url: str) -> None:
    image = f"{TAG}-upstream"
    with served(image, tmp_path / "upstream.log", "--upstream", vllm_url) as url:
        assert chat(url)
        assert httpx.get(f"{url}/health").json()["upstreams"][0]["healthy"]
