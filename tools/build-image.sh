#!/usr/bin/env bash
# Builds the agora image and prints its name.
#
#   tools/build-image.sh [IMAGE]           # default agora:dev
#   BASE_IMAGE=agora-base:... tools/build-image.sh
#
# BASE_IMAGE defaults to the Dockerfile's (an official python slim image, from a
# registry). Without a registry, pass the one tools/base-image.sh builds.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${1:-agora:dev}"
build_args=()
if [[ -n "${BASE_IMAGE:-}" ]]; then build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE"); fi
echo "==> building $IMAGE${BASE_IMAGE:+ from $BASE_IMAGE}" >&2
# host network: the build's pip reaches the package index the way the host does.
# The build stage is tagged too, so that what earlier builds left behind (the previous
# image and build stage, untagged now) can be pruned without losing the cached
# dependency layer, which the tagged stage still uses.
# ${a[@]+"${a[@]}"}: bash < 4.4 (macOS' 3.2) calls an empty "${a[@]}" unbound under set -u.
docker build --quiet --network host ${build_args[@]+"${build_args[@]}"} --target build --tag agora-build:latest . >&2
docker build --quiet --network host ${build_args[@]+"${build_args[@]}"} --tag "$IMAGE" . >&2
docker image prune --force --filter label=org.agora.image >/dev/null
echo "$IMAGE"
