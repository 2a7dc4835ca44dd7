#!/usr/bin/env bash
# Agora on a local kind cluster: the steps behind `make deploy`, `make undeploy`,
# `make port-forward` and `make test-cluster`, on Linux or macOS (amd64 or arm64).
#
#   tools/cluster.sh deploy | undeploy | port-forward [SERVICE] | test-cluster
#
# Needs Docker and kind (checked, with how to install them); installs the pinned helm and
# kubectl for this host into K8S_TOOLS_BIN (.venv/bin) when they are missing. Nothing of
# devstack's (`make setup`) is needed; `make test-cluster` makes the virtualenv itself.
#
# Settings (environment): KIND_CLUSTER (agora), KIND_HTTP_PORT (8090), KIND_HTTPS_PORT
# (8453), NAMESPACE (agora), RELEASE (agora), BASE_IMAGE (the Dockerfile's default),
# PROMETHEUS_PORT (19090: the local end of the Prometheus port-forward), FORWARD_PORT
# (the local end of SERVICE's, its own port by default), K8S_TOOLS_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/lib.sh
source tools/lib.sh
# shellcheck source=k8s/ingress-nginx.env
source k8s/ingress-nginx.env

CLUSTER="${KIND_CLUSTER:-agora}"
HTTP_PORT="${KIND_HTTP_PORT:-8090}"
HTTPS_PORT="${KIND_HTTPS_PORT:-8453}"
NAMESPACE="${NAMESPACE:-agora}"
RELEASE="${RELEASE:-agora}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-19090}"
TOOLS_BIN="${K8S_TOOLS_BIN:-.venv/bin}"
CONTEXT="kind-$CLUSTER"
AGORA_URL="http://localhost:$HTTP_PORT"
# The release k8s/kind.yaml's node image was built for (kind supports an image with its
# own release, best-effort with others); older kind also lacks what the flow relies on.
KIND_MIN_VERSION=v0.31.0
NODE_IMAGE="$(sed -n 's/^ *image: *//p' k8s/kind.yaml)"
# The chart's Prometheus Service, by its labels: its name follows the release's fullname.
PROMETHEUS_SELECTOR="app.kubernetes.io/name=prometheus,app.kubernetes.io/instance=$RELEASE"
# Images the node would pull from Docker Hub on every new cluster (anonymous pulls are
# rate-limited); loaded from the host's cache instead. Read from the rendered chart.
PRELOADED_IMAGES='^(postgres|redis|prom/prometheus):'

forwards=()  # background port-forwards, stopped on exit
cleanup() {
    local pid
    for pid in ${forwards[@]+"${forwards[@]}"}; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$TMPDIR_CLUSTER"
}
TMPDIR_CLUSTER="$(mktemp -d)"
trap cleanup EXIT

# ---------------------------------------------------------------- prerequisites

install_hint() {
    local platform
    platform="$(host_platform)"
    case "$1:$platform" in
        docker:darwin-*) echo "install Docker Desktop (https://docs.docker.com/desktop/setup/install/mac-install/) or colima, and start it" ;;
        docker:linux-*) echo "install Docker Engine (https://docs.docker.com/engine/install/, or your distribution's docker package) and add yourself to the docker group" ;;
        kind:darwin-*) echo "brew install kind, or: curl -Lo kind https://kind.sigs.k8s.io/dl/$KIND_MIN_VERSION/kind-$platform && chmod +x kind && mv kind /usr/local/bin/" ;;
        kind:linux-*) echo "curl -Lo kind https://kind.sigs.k8s.io/dl/$KIND_MIN_VERSION/kind-$platform && chmod +x kind && sudo mv kind /usr/local/bin/ (or: go install sigs.k8s.io/kind@$KIND_MIN_VERSION)" ;;
    esac
}

require_docker() {
    command -v docker >/dev/null || fail "docker is not installed: $(install_hint docker)"
    docker info >/dev/null 2>&1 \
        || fail "the Docker engine does not answer: start it (Docker Desktop, or sudo systemctl start docker) and check that you may use it"
}

require_kind() {
    command -v kind >/dev/null || fail "kind is not installed: $(install_hint kind)"
    local version
    version="$(kind version | sed -nE 's/.*(v[0-9]+\.[0-9]+\.[0-9]+).*/\1/p')"
    [[ -n "$version" ]] || fail "could not read the version of kind from \`kind version\`"
    version_at_least "$version" "$KIND_MIN_VERSION" \
        || fail "kind $version is too old: $KIND_MIN_VERSION or newer is needed for the pinned node image ($(install_hint kind))"
}

# The pinned helm and kubectl for this host, first on PATH.
require_kube_tools() {
    K8S_TOOLS_BIN="$TOOLS_BIN" tools/install-k8s-tools.sh >&2
    case "$TOOLS_BIN" in
        /*) PATH="$TOOLS_BIN:$PATH" ;;
        *) PATH="$PWD/$TOOLS_BIN:$PATH" ;;
    esac
    export PATH
}

# Output first, then grep: `cmd | grep -q` under pipefail fails whenever grep stops
# reading before cmd has written everything (SIGPIPE).
cluster_exists() { grep -qx "$CLUSTER" <<<"$(kind get clusters 2>/dev/null)"; }

# ---------------------------------------------------------------- deploy

create_cluster() {
    if cluster_exists; then
        say "kind cluster $CLUSTER exists"
        local node_version
        node_version="$(kubectl --context "$CONTEXT" get nodes \
            --output 'jsonpath={.items[0].status.nodeInfo.kubeletVersion}' 2>/dev/null || true)"
        if [[ -n "$node_version" && "$NODE_IMAGE" != "kindest/node:$node_version@"* ]]; then
            say "warning: its node runs Kubernetes $node_version, not the pinned ${NODE_IMAGE%@*}; \`make undeploy\` and deploy again to get it"
        fi
        return
    fi
    say "creating kind cluster $CLUSTER with ${NODE_IMAGE%@*} (ingress on 127.0.0.1:$HTTP_PORT and :$HTTPS_PORT)"
    sed -e "s/hostPort: 8090/hostPort: $HTTP_PORT/" -e "s/hostPort: 8453/hostPort: $HTTPS_PORT/" \
        k8s/kind.yaml | kind create cluster --name "$CLUSTER" --config -
}

# Builds the image and loads it into the node under a tag naming its build inputs
# (tools/image-tag.sh), so that a change rolls the pods and an unchanged tree does not;
# the host's older agora:<tag> tags are removed.
load_image() {
    tools/build-image.sh agora:dev >/dev/null
    IMAGE_TAG="$(tools/image-tag.sh)"
    docker tag agora:dev "agora:$IMAGE_TAG"
    say "loading agora:$IMAGE_TAG into the kind node"
    kind load docker-image "agora:$IMAGE_TAG" --name "$CLUSTER" >/dev/null
    local tag
    for tag in $(docker image ls agora --format '{{.Tag}}'); do
        if [[ "$tag" =~ ^[0-9a-f]{12}$ && "$tag" != "$IMAGE_TAG" ]]; then
            docker rmi "agora:$tag" >/dev/null 2>&1 || true
        fi
    done
}

# The release's own arguments, used to render (before anything changes) and to install.
# --set-string: an all-digit tag (about one build in 300) is still a string to the schema.
chart_args() {
    chart=(helm/agora --namespace "$NAMESPACE" --values k8s/values-kind.yaml
        --set-string "image.tag=$IMAGE_TAG" --set-string "ingress.publicUrl=$AGORA_URL/")
}

# postgres, redis and prometheus go from the host's image cache into the node, so that a
# new cluster does not pull them from Docker Hub again. Best effort: what fails to load
# is pulled by the node as usual.
preload_images() {
    local rendered image
    rendered="$(helm template "$RELEASE" "${chart[@]}")"  # bad values fail here, before the release changes
    for image in $(echo "$rendered" | sed -nE 's/^ *image: *"?([^" ]+)"?$/\1/p' \
        | grep -E "$PRELOADED_IMAGES" | LC_ALL=C sort -u); do
        if ! docker image inspect "$image" >/dev/null 2>&1; then
            say "pulling $image into the host's cache"
            docker pull --quiet "$image" >/dev/null || { say "warning: could not pull $image; the node will"; continue; }
        fi
        say "loading $image into the kind node"
        kind load docker-image "$image" --name "$CLUSTER" >/dev/null \
            || say "warning: could not load $image into the node; it will pull it itself"
    done
}

# The admission webhook rejects every Ingress until its certificate is patched in (the
# manifest's admission Jobs); a server-side dry run of a probe Ingress passes through it.
wait_for_admission() {
    local tries=0
    until kubectl --context "$CONTEXT" apply --dry-run=server -f - >/dev/null 2>"$TMPDIR_CLUSTER/admission" <<'PROBE'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: agora-admission-probe
  namespace: ingress-nginx
spec:
  ingressClassName: nginx
  defaultBackend:
    service:
      name: agora-admission-probe
      port:
        number: 80
PROBE
    do
        if ((++tries >= 90)); then
            cat "$TMPDIR_CLUSTER/admission" >&2
            fail "ingress-nginx's admission webhook did not accept an Ingress within 3 minutes"
        fi
        sleep 2
    done
}

install_ingress_nginx() {
    say "installing ingress-nginx $INGRESS_NGINX_VERSION"
    kubectl --context "$CONTEXT" apply -f "$INGRESS_NGINX_MANIFEST" >/dev/null
    say "waiting for the ingress controller and its admission webhook"
    # rollout status, unlike `wait pod`, also waits for pods that do not exist yet
    kubectl --context "$CONTEXT" -n ingress-nginx rollout status \
        deployment/ingress-nginx-controller --timeout=300s
    wait_for_admission
}

# Agora images the node no longer runs (the previous deploys'); one still in use by a
# terminating pod stays until the next deploy.
prune_node_images() {
    local node ref
    for node in $(kind get nodes --name "$CLUSTER"); do
        for ref in $(docker exec "$node" crictl images \
            | awk -v tag="$IMAGE_TAG" '$1 == "docker.io/library/agora" && $2 != tag { print $1 ":" $2 }'); do
            docker exec "$node" crictl rmi "$ref" >/dev/null 2>&1 || true
        done
    done
}

deploy() {
    require_docker
    require_kind
    require_kube_tools
    create_cluster
    load_image
    local chart
    chart_args
    preload_images
    install_ingress_nginx
    say "helm upgrade --install $RELEASE (namespace $NAMESPACE; waits for every pod and the migrations)"
    helm upgrade --install "$RELEASE" "${chart[@]}" --kube-context "$CONTEXT" --create-namespace \
        --wait --timeout 10m
    say "helm test: every service's /readyz through its Service"
    helm test "$RELEASE" --kube-context "$CONTEXT" --namespace "$NAMESPACE" --logs
    prune_node_images
    cat <<URLS

  AGORA_URL (ingress)  $AGORA_URL
  API docs             $AGORA_URL/api/v1/<service>/docs
  Prometheus           make port-forward, then http://127.0.0.1:$PROMETHEUS_PORT
  integration tests    make test-cluster
  remove it all        make undeploy

URLS
}

undeploy() {
    command -v kind >/dev/null || fail "kind is not installed: $(install_hint kind)"
    if cluster_exists; then
        say "deleting kind cluster $CLUSTER"
        kind delete cluster --name "$CLUSTER"
    else
        say "no kind cluster $CLUSTER"
    fi
}

# ---------------------------------------------------------------- port-forwards

prometheus_service() {
    local name
    name="$(kubectl --context "$CONTEXT" -n "$NAMESPACE" get service -l "$PROMETHEUS_SELECTOR" \
        --output 'jsonpath={.items[0].metadata.name}')" || true
    [[ -n "$name" ]] || fail "no Prometheus Service ($PROMETHEUS_SELECTOR) in namespace $NAMESPACE: is release $RELEASE deployed, with prometheus.enabled?"
    echo "$name"
}

# start_forward RESOURCE LOCAL:REMOTE: a kubectl port-forward in the background, returned
# once it listens; if it dies first (the local port is taken, say), its error and a
# failure instead of a URL that would show something else.
start_forward() {
    local log="$TMPDIR_CLUSTER/forward-${#forwards[@]}" tries=0 pid
    kubectl --context "$CONTEXT" -n "$NAMESPACE" port-forward --address 127.0.0.1 "$1" "$2" \
        >"$log" 2>&1 &
    pid=$!
    forwards+=("$pid")
    until grep -q '^Forwarding from' "$log"; do
        if ! kill -0 "$pid" 2>/dev/null || ((++tries >= 150)); then
            cat "$log" >&2
            fail "port-forward to $1 on 127.0.0.1:${2%%:*} did not start (is the port taken? PROMETHEUS_PORT and FORWARD_PORT choose others)"
        fi
        sleep 0.1
    done
}

port_forward() {
    require_kube_tools
    local service="${1:-catalog}" port prometheus
    port="$(kubectl --context "$CONTEXT" -n "$NAMESPACE" get service "$service" \
        --output 'jsonpath={.spec.ports[0].port}')" || fail "no Service $service in $NAMESPACE"
    prometheus="$(prometheus_service)"
    start_forward "service/$prometheus" "$PROMETHEUS_PORT:9090"
    start_forward "service/$service" "${FORWARD_PORT:-$port}:$port"
    say "Prometheus on http://127.0.0.1:$PROMETHEUS_PORT, $service on http://127.0.0.1:${FORWARD_PORT:-$port} (Ctrl-C stops)"
    wait
}

# The integration tests as on devstack: AGORA_URL is the kind ingress, PROMETHEUS_URL a
# port-forward to the cluster's Prometheus for the length of the run. The answers of
# devstack's nginx itself (TRACE, a body over its limit) are ingress-nginx's HTML here.
test_cluster() {
    require_kind
    require_kube_tools
    cluster_exists || fail "no kind cluster $CLUSTER: run \`make deploy\` first"
    [[ -x .venv/bin/pytest ]] || fail "no virtualenv with the tests: run \`make test-cluster\` (it makes one)"
    start_forward "service/$(prometheus_service)" "$PROMETHEUS_PORT:9090"
    say "integration tests through the kind ingress at $AGORA_URL"
    AGORA_URL="$AGORA_URL" PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT" .venv/bin/pytest -m "not devstack_ingress" tests/integration
}

case "${1:-}" in
    deploy) deploy ;;
    undeploy) undeploy ;;
    port-forward) port_forward "${2:-}" ;;
    test-cluster) test_cluster ;;
    *) fail "usage: $0 deploy | undeploy | port-forward [SERVICE] | test-cluster" ;;
esac
