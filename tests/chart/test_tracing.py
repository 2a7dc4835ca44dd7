"""Tracing in the chart (docs/tracing.md): off by default, an existing collector or the
release's own, the sampler as the standard variables, the network paths to it."""

from __future__ import annotations

import yaml

from tests.chart.conftest import Rendered

OTEL = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")


def service_deployments(rendered: Rendered) -> list[dict]:
    names = {w.name for w in rendered.workloads}
    return [d for d in rendered.of_kind("Deployment") if d["metadata"]["name"] in names]


def test_off_by_default_no_variable_and_no_collector(default_render):
    for deployment in service_deployments(default_render):
        assert not set(OTEL) & set(default_render.env_of(deployment))
    assert not [o for o in default_render.objects if "otel-collector" in o["metadata"]["name"]]


def test_an_existing_collector_is_every_services_endpoint(renders):
    rendered = renders["tracing-endpoint"]
    for deployment in service_deployments(rendered):
        env = rendered.env_of(deployment)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.01"  # the default: low
        policy = rendered.get("NetworkPolicy", deployment["metadata"]["name"])
        assert {"port": 4318, "protocol": "TCP"} in [
            port for rule in policy["spec"]["egress"] for port in rule.get("ports", [])
        ]


def test_the_release_collector_receives_and_forwards(renders):
    rendered = renders["tracing-collector"]
    name = "agora-otel-collector"
    service = rendered.get("Service", name)
    assert service["spec"]["ports"][0]["port"] == 4318
    config = yaml.safe_load(rendered.get("ConfigMap", name)["data"]["config.yaml"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["service"]["pipelines"]["traces"] == {
        "receivers": ["otlp"],
        "processors": ["batch"],
        "exporters": ["otlphttp"],
    }
    deployment = rendered.get("Deployment", name)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "otel/opentelemetry-collector:0.120.0"
    collector_labels = deployment["spec"]["selector"]["matchLabels"]
    for service_deployment in service_deployments(rendered):
        env = rendered.env_of(service_deployment)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{name}:4318"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.05"
        policy = rendered.get("NetworkPolicy", service_deployment["metadata"]["name"])
        peers = [
            (peer.get("podSelector", {}).get("matchLabels"), rule["ports"])
            for rule in policy["spec"]["egress"]
            for peer in rule["to"]
        ]
        assert (collector_labels, [{"port": 4318, "protocol": "TCP"}]) in peers
    policy = rendered.get("NetworkPolicy", name)
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 4318, "protocol": "TCP"}]
    assert policy["spec"]["egress"][0]["ports"] == [{"port": 4318, "protocol": "TCP"}]
