#!/usr/bin/env bash
# A stand-in for docker, kind, kubectl and helm (tests/tools): records its name, arguments
# and, where a command reads one, its stdin in $FAKE_DIR, and answers what tools/cluster.sh
# asks the way the real program would. `helm template` is the real helm ($REAL_HELM).
name="$(basename "$0")"
calls="$FAKE_DIR/calls"
{
    printf '%s' "$name"
    for arg in "$@"; do printf '\037%s' "$arg"; done
    printf '\036'
} >>"$calls"
stdin() { cat >"$FAKE_DIR/stdin-$(grep -o $'\036' "$calls" | wc -l | tr -d ' ')"; }

case "$name $*" in
    "docker info") ;;
    "docker image inspect --format {{.Id}} "*) echo "sha256:${FAKE_BASE_ID:-1111111111111111111111111111111111111111111111111111111111111111}" ;;
    "docker image inspect "*) [[ " ${FAKE_MISSING_IMAGES:-} " != *" ${*: -1} "* ]] ;;
    "docker image ls agora --format {{.Tag}}") printf '%s\n' dev 0123456789ab "<none>" ;;
    "docker exec "*" crictl images")
        printf '%s\n' "IMAGE TAG IMAGE ID SIZE" \
            "docker.io/library/agora 0123456789ab 5c3f0c2e1a7b 120MB" \
            "docker.io/library/postgres 17.6-bookworm 9a8b7c6d5e4f 150MB" ;;
    "docker "*) ;;
    "kind version") echo "kind ${FAKE_KIND_VERSION:-v0.31.0} go1.25.5 linux/amd64" ;;
    "kind get clusters") [[ -e "$FAKE_DIR/cluster" ]] && echo "${KIND_CLUSTER:-agora}" ;;
    "kind create cluster "*) stdin; touch "$FAKE_DIR/cluster" ;;
    "kind get nodes "*) echo "${KIND_CLUSTER:-agora}-control-plane" ;;
    "kind "*) ;;
    "helm version --template {{.Version}}") echo v4.1.4 ;;
    "helm template "*) exec "$REAL_HELM" "$@" ;;
    "helm "*) ;;
    "kubectl version --client") printf '%s\n' "Client Version: v1.33.9" "Kustomize Version: v5.6.0" ;;
    "kubectl "*" apply --dry-run=server -f -") stdin ;;
    "kubectl "*" get nodes "*) echo "${FAKE_NODE_VERSION:-v1.33.7}" ;;
    "kubectl "*" get service -l "*) echo "${FAKE_PROMETHEUS_SERVICE:-agora-prometheus}" ;;
    "kubectl "*" get service "*) echo 8000 ;;
    "kubectl "*" port-forward "*)
        ports="${*: -1}"
        local_port="${ports%%:*}"
        if [[ " ${FAKE_TAKEN_PORTS:-} " == *" $local_port "* ]]; then
            echo "Unable to listen on port $local_port: bind: address already in use" >&2
            echo "error: unable to listen on any of the requested ports: [{$local_port 9090}]" >&2
            exit 1
        fi
        echo "Forwarding from 127.0.0.1:$local_port -> ${ports#*:}"
        exec sleep 60 ;;
    "kubectl "*) ;;
esac
