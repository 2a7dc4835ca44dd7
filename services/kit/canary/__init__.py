"""Canary analysis: step a canary's weight, compare it with stable in Prometheus, then
promote or roll back (docs/canary.md). The same code runs as the chart's hook Job
(`agora-canary`, services.kit.canary.kubernetes) and as devstack's `make canary-analyze`."""
