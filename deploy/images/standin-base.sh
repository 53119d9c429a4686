#!/bin/sh
# Make a local stand-in for the python:3.11-slim base image from Debian's own packages, for machines
# that reach no container registry: Debian bookworm (whose python3 is 3.11) with a virtual
# environment on PATH, so `python` and `pip` work as in the official image, and the Python headers
# the official image also has (torch.compile builds C++ kernels against them at run time).
#   deploy/images/standin-base.sh [NAME]     (default whetstone-base:bookworm; root, podman)
set -eu
NAME=${1:-whetstone-base:bookworm}
if podman image exists "$NAME"; then
    echo "$NAME exists"
    exit 0
fi
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-dev,ca-certificates bookworm "$ROOT"
chroot "$ROOT" python3 -m venv /opt/python
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
tar -C "$ROOT" -c . | podman import \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$NAME"
