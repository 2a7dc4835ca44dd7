"""devstack: the chart's workloads on one machine, without Kubernetes (`make up`)."""
