#!/usr/bin/env bash
# Prints the tag that names the agora image by its build inputs: 12 hex digits of a
# SHA-256 over the Dockerfile, every file the build context takes (.dockerignore lets in
# pyproject.toml, constraints.txt, README.md and services/) and the base image's id.
#
# Not the image id: with Docker's containerd image store (Docker Desktop, new Docker
# Engine installs) the id changes on every build (its provenance attestation carries a
# timestamp), which would roll every pod on every `make deploy`. The same inputs give the
# same tag, so only a change rolls the pods.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/lib.sh
source tools/lib.sh

base="${BASE_IMAGE:-$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)}"
base_id="$(docker image inspect --format '{{.Id}}' "$base" 2>/dev/null || echo unknown)"
inputs="$(mktemp)"
trap 'rm -f "$inputs"' EXIT
{
    echo "base $base $base_id"
    {
        printf '%s\n' Dockerfile .dockerignore pyproject.toml constraints.txt README.md
        find services -type f ! -name '*.pyc' ! -path '*/__pycache__/*'
    } | LC_ALL=C sort | while IFS= read -r file; do
        echo "$(sha256_of "$file")  $file"
    done
} >"$inputs"
sha256_of "$inputs" | cut -c1-12
