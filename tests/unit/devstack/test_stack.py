"""devstack's own answers: the nginx it configures, the names `logs` takes."""

from __future__ import annotations

import pytest

from devstack.layout import Layout
from devstack.render import INGRESS_ERRORS, nginx_conf
from devstack.stack import DevstackError, logs
from devstack.topology import REPO, ingress_target, workloads

LAYOUT = Layout(REPO / ".run" / "unit-never-started", 8080, 18000)


def test_nginx_answers_its_own_errors_in_shape_with_the_request_id():
    conf = nginx_conf(LAYOUT, workloads())
    ingress = conf.split("# the ingress", 1)[1].split("# the Service of", 1)[0]
    for status, (answer, _, code) in INGRESS_ERRORS.items():
        assert f"error_page {status} = @error_{status};" in ingress
        page = ingress.split(f"location @error_{status} {{", 1)[1].split("\n", 1)[0]
        assert f'return {answer} \'{{"error":' in page and f'"code":"{code}"' in page
        assert "add_header X-Request-ID $agora_request_id always;" in page
    assert 'add_header Allow "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"' in ingress
    assert INGRESS_ERRORS[502][0] == INGRESS_ERRORS[503][0] == 503
    assert INGRESS_ERRORS[504][0] == 504
    # the id nginx takes or makes is the one the services see
    assert "proxy_set_header X-Request-ID $agora_request_id;" in conf


def test_longest_prefix_wins_element_by_element():
    services = workloads()
    assert ingress_target(services, "/api/v1/facts/docs").name == "facts"
    assert ingress_target(services, "/api/v1/facts").name == "factcheck"
    root = ingress_target(services, "/")  # the landing page's service, if any takes "/"
    assert ingress_target(services, "/api/v1/factsheet") is root
    assert ingress_target(services, "/api/v1/factsource/docs") is root


def test_logs_of_an_unknown_service_names_it_and_the_known_ones():
    with pytest.raises(DevstackError) as error:
        logs(LAYOUT, "nope", follow=False)
    message = str(error.value)
    assert "'nope'" in message
    assert all(name in message for name in ("catalog", "users", "postgres", "nginx"))
