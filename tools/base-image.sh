#!/usr/bin/env bash
# Builds the Docker base image for machines without a container registry: Debian
# bookworm (minbase) plus python3, made with debootstrap from Debian's package mirror
# and `docker import`ed. Prints the image name for `docker build --build-arg BASE_IMAGE=`.
#
#   tools/base-image.sh            # reuses the image when this script has not changed
#   REBUILD=1 tools/base-image.sh  # always rebuilds (fresh security updates)
#
# The image trusts this machine's CA bundle, so pip in the build and HTTPS from the
# services work behind the same TLS-inspecting egress as the host.
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SUITE=bookworm
# python3-venv: the build stage makes the virtualenv; passwd: useradd for the runtime user.
PACKAGES=python3,python3-venv,ca-certificates,passwd
TAG="agora-base:${SUITE}-$(sha256sum "$0" | cut -c1-12)"

say() { echo "==> $*" >&2; }

if [[ -z "${REBUILD:-}" ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
    say "base image $TAG exists"
    echo "$TAG"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "debootstrap is not installed: apt-get install debootstrap (or run make setup as root)" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "debootstrap needs root: run as root, or pass an official image as BASE_IMAGE" >&2
    exit 1
fi

rootfs="$(mktemp -d /var/tmp/agora-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
started=$(date +%s)
say "debootstrap $SUITE ($PACKAGES) into $rootfs"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >/dev/null

say "applying $SUITE-updates and $SUITE-security"
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
    'apt-get update -qq && apt-get upgrade -y -qq >/dev/null && apt-get clean'
# The host's bundle again: an upgraded ca-certificates regenerates the file.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"

# What a container never needs: package lists, caches, docs, man pages, locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/* "$rootfs"/var/log/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} +

say "importing into Docker as $TAG"
tar -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$TAG" >/dev/null
say "base image $TAG built in $(($(date +%s) - started)) s"
echo "$TAG"
