"""The service kit: everything a service needs that is not its own domain.

Deliberately empty: `agora-serve` must set PROMETHEUS_MULTIPROC_DIR before anything
imports prometheus-client, so import from the submodules (services.kit.api, ...).
"""
