#!/bin/sh
# Build the full image (TAG) and the upstream image (TAG-upstream) with docker, else podman.
#   BASE_IMAGE=python:3.11-slim TAG=whetstone deploy/images/build.sh
# With podman the build runs with chroot isolation on the host's network, and sees this machine's
# pip configuration (its files and every local path they name) read-only, so pip inside the build
# reaches the package index the way the machine does.
set -eu
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}
TAG=${TAG:-whetstone}
PYTHON=${PYTHON:-python3}
HERE=$(dirname "$0")
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then  # a client with no engine will not do
    set -- docker build
elif command -v podman >/dev/null 2>&1; then
    # shellcheck disable=SC2046  # one word per mount flag
    set -- podman build --isolation chroot --network host $("$PYTHON" "$HERE/pip_mounts.py")
else
    echo "make image needs docker or podman" >&2
    exit 1
fi
"$@" --build-arg BASE_IMAGE="$BASE_IMAGE" --target upstream -t "$TAG-upstream" "$HERE/../.."
"$@" --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$TAG" "$HERE/../.."
