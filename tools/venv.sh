#!/usr/bin/env bash
# The Python virtualenv with the locked versions (constraints.txt): the services, the
# tests and their tools. Needs only a python3 (3.11+) with its venv module, on any OS:
# it is what the kind flow (`make test-cluster`) needs, and `make setup` runs it too.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-dev}"  # pyproject.toml's extras: dev (the tests and checks), bench

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || {
        echo "error: $PYTHON is not Python 3.11 or newer: install one (macOS: brew install python@3.12) and pass it, e.g. make test-cluster PYTHON=python3.12" >&2
        exit 1
    }
    echo "==> creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
echo "==> installing Python packages (constraints.txt)"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[$EXTRAS]"
