"""The canaries of a devstack: what `devstack canary` started and `promote` made stable.

Kept in the run directory (canary.json) as an overlay of values.yaml, in its own terms:

    {"canaries": {"catalog": {"enabled": true, "weight": 20, "env": {...}, ...}},
     "promoted": {"catalog": {"env": {...}, "version": "v2"}}}

`canaries` is merged over `services.<name>.canary`, `promoted` over the service's env: so
a canary set in values.yaml runs on `make up` too, and `devstack up` again keeps what
`promote` made stable. The state goes with the run directory (`run --fresh` forgets it).
"""

from __future__ import annotations

import json
from typing import Any

from .layout import Layout
from .topology import deep_merge, load_values


def state(layout: Layout) -> dict[str, Any]:
    path = layout.canary_file
    loaded = json.loads(path.read_text()) if path.exists() else {}
    return {"canaries": loaded.get("canaries", {}), "promoted": loaded.get("promoted", {})}


def save(layout: Layout, new_state: dict[str, Any]) -> None:
    layout.canary_file.parent.mkdir(parents=True, exist_ok=True)
    layout.canary_file.write_text(json.dumps(new_state, indent=2, sort_keys=True))


def values(layout: Layout) -> dict[str, Any]:
    """values.yaml (with AGORA_VALUES_EXTRA) and this devstack's canaries."""
    merged = load_values()
    current = state(layout)
    services = merged.setdefault("services", {})
    for name, promoted in current["promoted"].items():
        if name in services:
            entry = services[name] or {}
            services[name] = deep_merge(entry, {"env": promoted.get("env", {})})
    for name, canary in current["canaries"].items():
        if name in services:
            services[name] = deep_merge(services[name] or {}, {"canary": canary})
    return merged
