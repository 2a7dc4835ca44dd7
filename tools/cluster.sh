#!/usr/bin/env bash
# Agora on a local kind cluster: the steps behind `make deploy`, `make undeploy`,
# `make port-forward` and `make test-cluster`. Needs Docker, kind, kubectl and helm
# (`make setup` puts helm and kubectl into .venv/bin) and network access for images.
#
#   tools/cluster.sh deploy | undeploy | port-forward [SERVICE] | test-cluster
#
# Settings (environment): KIND_CLUSTER (agora), KIND_HTTP_PORT (8090), KIND_HTTPS_PORT
# (8453), NAMESPACE (agora), RELEASE (agora), BASE_IMAGE (the Dockerfile's default).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

CLUSTER="${KIND_CLUSTER:-agora}"
HTTP_PORT="${KIND_HTTP_PORT:-8090}"
HTTPS_PORT="${KIND_HTTPS_PORT:-8453}"
NAMESPACE="${NAMESPACE:-agora}"
RELEASE="${RELEASE:-agora}"
CONTEXT="kind-$CLUSTER"
AGORA_URL="http://localhost:$HTTP_PORT"
# shellcheck source=../k8s/ingress-nginx.env
source k8s/ingress-nginx.env

say() { echo "==> $*"; }
fail() { echo "error: $*" >&2; exit 1; }

require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null && continue
        case "$tool" in
            docker) fail "docker is not installed: https://docs.docker.com/engine/install/ (Debian: sudo apt-get install docker.io)" ;;
            kind) fail "kind is not installed: https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or: go install sigs.k8s.io/kind@latest)" ;;
            kubectl|helm) fail "$tool is not installed: run \`make setup\` (it puts helm and kubectl into .venv/bin)" ;;
        esac
    done
    if [[ " $* " == *" docker "* ]] && ! docker info >/dev/null 2>&1; then
        fail "the Docker engine does not answer: start it (sudo systemctl start docker) and check that you may use it"
    fi
}

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; }

create_cluster() {
    if cluster_exists; then
        say "kind cluster $CLUSTER exists"
        return
    fi
    say "creating kind cluster $CLUSTER (ingress on 127.0.0.1:$HTTP_PORT and :$HTTPS_PORT)"
    sed -e "s/hostPort: 8090/hostPort: $HTTP_PORT/" -e "s/hostPort: 8453/hostPort: $HTTPS_PORT/" \
        k8s/kind.yaml | kind create cluster --name "$CLUSTER" --config -
}

# Builds the image and loads it into the node under a tag naming its content, so a
# changed image rolls the pods and an unchanged one does not.
load_image() {
    tools/build-image.sh agora:dev >/dev/null
    local id
    id="$(docker image inspect --format '{{.Id}}' agora:dev | cut -d: -f2 | cut -c1-12)"
    docker tag agora:dev "agora:$id"
    say "loading agora:$id into the kind node"
    kind load docker-image "agora:$id" --name "$CLUSTER" >/dev/null
    IMAGE_TAG="$id"
}

install_ingress_nginx() {
    say "installing ingress-nginx $INGRESS_NGINX_VERSION"
    kubectl --context "$CONTEXT" apply -f "$INGRESS_NGINX_MANIFEST" >/dev/null
    say "waiting for the ingress controller"
    # rollout status, unlike `wait pod`, also waits for pods that do not exist yet
    kubectl --context "$CONTEXT" -n ingress-nginx rollout status \
        deployment/ingress-nginx-controller --timeout=300s
}

deploy() {
    require docker kind kubectl helm
    create_cluster
    load_image
    install_ingress_nginx
    say "helm upgrade --install $RELEASE (namespace $NAMESPACE; waits for every pod and the migrations)"
    helm upgrade --install "$RELEASE" helm/agora --kube-context "$CONTEXT" \
        --namespace "$NAMESPACE" --create-namespace \
        --values k8s/values-kind.yaml \
        --set "image.tag=$IMAGE_TAG" --set "ingress.publicUrl=$AGORA_URL/" \
        --wait --timeout 10m
    say "helm test: every service's /readyz through its Service"
    helm test "$RELEASE" --kube-context "$CONTEXT" --namespace "$NAMESPACE" --logs
    cat <<URLS

  AGORA_URL (ingress)  $AGORA_URL
  API docs             $AGORA_URL/api/v1/<service>/docs
  Prometheus           make port-forward, then http://127.0.0.1:9090
  integration tests    make test-cluster
  remove it all        make undeploy

URLS
}

undeploy() {
    require kind
    if cluster_exists; then
        say "deleting kind cluster $CLUSTER"
        kind delete cluster --name "$CLUSTER"
    else
        say "no kind cluster $CLUSTER"
    fi
}

port_forward() {
    require kubectl
    local service="${1:-catalog}" port
    port="$(kubectl --context "$CONTEXT" -n "$NAMESPACE" get service "$service" \
        --output 'jsonpath={.spec.ports[0].port}')" || fail "no Service $service in $NAMESPACE"
    say "Prometheus on http://127.0.0.1:9090, $service on http://127.0.0.1:$port (Ctrl-C stops)"
    kubectl --context "$CONTEXT" -n "$NAMESPACE" port-forward "service/$RELEASE-prometheus" 9090:9090 &
    local prometheus=$!
    trap 'kill $prometheus 2>/dev/null' EXIT
    kubectl --context "$CONTEXT" -n "$NAMESPACE" port-forward "service/$service" "$port:$port"
}

# The integration tests as on devstack: AGORA_URL is the kind ingress, PROMETHEUS_URL a
# port-forward to the cluster's Prometheus for the length of the run.
test_cluster() {
    require kind kubectl
    cluster_exists || fail "no kind cluster $CLUSTER: run \`make deploy\` first"
    kubectl --context "$CONTEXT" -n "$NAMESPACE" port-forward "service/$RELEASE-prometheus" \
        19090:9090 >/dev/null &
    local prometheus=$!
    trap 'kill $prometheus 2>/dev/null' EXIT
    say "integration tests through the kind ingress at $AGORA_URL"
    AGORA_URL="$AGORA_URL" PROMETHEUS_URL=http://127.0.0.1:19090 .venv/bin/pytest tests/integration
}

case "${1:-}" in
    deploy) deploy ;;
    undeploy) undeploy ;;
    port-forward) port_forward "${2:-}" ;;
    test-cluster) test_cluster ;;
    *) fail "usage: $0 deploy | undeploy | port-forward [SERVICE] | test-cluster" ;;
esac
