"""Result classification against the local site that answers every case."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from services.crawler.checker import CheckOptions, HostSlots
from services.crawler.urls import normalize

QUICK = CheckOptions(timeout=2.0)


async def check(checker, url, options=QUICK):
    return await checker.check(normalize(url), options)


async def test_a_working_url(make_checker, site):
    result = await check(await make_checker(), site.url("/ok"))
    assert result.status_code == 200 and result.error is None
    assert result.final_url == site.url("/ok") and result.redirects == 0
    assert result.attempts == 1 and result.elapsed_ms > 0
    [hit] = site.site.hits
    assert hit.method == "HEAD"
    assert "Agora" in hit.user_agent


@pytest.mark.parametrize(("code", "retries"), [(404, 2), (410, 2), (403, 2), (500, 0), (503, 0)])
async def test_http_errors_carry_their_status(make_checker, site, code, retries):
    result = await check(await make_checker(retries=retries), site.url(f"/status/{code}"))
    assert result.status_code == code
    assert result.error == {"kind": "http", "detail": code}
    # 4xx is an answer: not retried; 5xx would be, but retries=0 here
    assert result.attempts == 1


async def test_a_redirect_chain_is_followed_and_counted(make_checker, site):
    result = await check(await make_checker(), site.url("/redirect/3"))
    assert result.status_code == 200 and result.error is None
    assert result.redirects == 3
    assert result.final_url == site.url("/redirect/0")


async def test_too_many_redirects(make_checker, site):
    checker = await make_checker()
    chain = await check(checker, site.url("/redirect/4"), CheckOptions(max_redirects=3))
    assert chain.error_kind == "too_many_redirects" and chain.redirects == 4
    assert chain.status_code == 301
    loop = await check(checker, site.url("/loop"))
    assert loop.error_kind == "too_many_redirects"
    assert site.site.count("/loop") == QUICK.max_redirects + 1
    none = await check(checker, site.url("/redirect/1"), CheckOptions(max_redirects=0))
    assert none.error_kind == "too_many_redirects" and site.site.count("/redirect/0") == 0


async def test_500_then_200_is_retried(make_checker, site):
    checker = await make_checker(retries=2)
    result = await check(checker, site.url("/flaky/a?failures=1"))
    assert result.status_code == 200 and result.error is None and result.attempts == 2
    assert site.site.count("/flaky/a") == 2


async def test_retries_are_bounded(make_checker, site):
    checker = await make_checker(retries=2)
    result = await check(checker, site.url("/flaky/b?failures=10&status=502"))
    assert result.error == {"kind": "http", "detail": 502}
    assert result.attempts == 3 and site.site.count("/flaky/b") == 3


async def test_429_is_retried_after_the_pause_it_asks_for(make_checker, site):
    checker = await make_checker(retries=1, max_backoff=0.2)  # Retry-After 1 s, capped
    result = await check(checker, site.url("/retry-after/c"))
    assert result.status_code == 200 and result.attempts == 2
    first, second = [hit for hit in site.site.hits if hit.path == "/retry-after/c"]
    assert second.at - first.at >= 0.2


async def test_a_slow_answer_times_out_and_is_retried(make_checker, site):
    checker = await make_checker(retries=1)
    result = await check(checker, site.url("/slow?ms=3000"), CheckOptions(timeout=0.3))
    assert result.error_kind == "timeout" and result.status_code is None
    assert result.attempts == 2


@pytest.mark.parametrize("path", ["/hang", "/slow?ms=5000"])
async def test_a_server_that_never_answers_times_out(make_checker, site, path):
    result = await check(await make_checker(), site.url(path), CheckOptions(timeout=0.3))
    assert result.error_kind == "timeout"


async def test_a_socket_that_never_speaks_times_out(make_checker, site):
    url = f"http://127.0.0.1:{site.silent_port}/"
    result = await check(await make_checker(), url, CheckOptions(timeout=0.3))
    assert result.error_kind == "timeout"


async def test_connection_refused(make_checker, site):
    result = await check(await make_checker(), f"http://127.0.0.1:{site.refused_port}/")
    assert result.error_kind == "connect" and result.status_code is None
    assert result.attempts == 1  # not retried: only 429, 5xx and timeouts are


async def test_unknown_host(make_checker):
    checker = await make_checker({"known.test": ["127.0.0.1"]})
    result = await check(checker, "http://unknown.test/")
    assert result.error_kind == "dns"


async def test_a_bad_certificate(make_checker, site):
    result = await check(await make_checker(), f"{site.tls_base}/ok")
    assert result.error_kind == "ssl"
    assert result.error_detail.startswith("SSL_ERROR")
    assert "certificate" in result.error_detail


@pytest.mark.parametrize("path", ["/huge", "/huge-chunked"])
async def test_a_huge_body_is_not_read_past_the_cap(make_checker, site, path):
    checker = await make_checker(max_body_bytes=64 * 1024)
    result = await check(checker, site.url(path), CheckOptions(method="GET"))
    assert result.status_code == 200
    assert result.error == {"kind": "body_too_large", "detail": "more than 65536 bytes"}
    head = await check(checker, site.url("/huge"))  # HEAD reads no body at all
    assert head.error is None and head.status_code == 200


async def test_a_gzip_bomb_is_never_unpacked(make_checker, site):
    checker = await make_checker()
    site.site.bomb()  # built before measuring
    tracemalloc.start()
    try:
        result = await check(checker, site.url("/bomb"), CheckOptions(method="GET"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status_code == 200 and result.error is None  # 256 KiB on the wire: fine
    assert peak < 32 * 1024 * 1024  # unpacked, it would be 256 MiB


async def test_head_refused_falls_back_to_get(make_checker, site):
    result = await check(await make_checker(), site.url("/no-head"))
    assert result.status_code == 200 and result.error is None
    assert [hit.method for hit in site.site.hits] == ["HEAD", "GET"]


async def test_get_alone(make_checker, site):
    result = await check(await make_checker(), site.url("/ok"), CheckOptions(method="GET"))
    assert result.status_code == 200
    assert [hit.method for hit in site.site.hits] == ["GET"]


async def test_per_host_limit(make_checker, site):
    checker = await make_checker(per_host=2, concurrency=20)
    urls = [site.url(f"/slow?ms=150&i={i}") for i in range(8)]
    results = await asyncio.gather(*(check(checker, url) for url in urls))
    assert all(result.status_code == 200 for result in results)
    assert site.site.most_active == 2


async def test_per_worker_limit_across_hosts(make_checker, site):
    records = {f"h{i}.test": ["127.0.0.1"] for i in range(6)}
    checker = await make_checker(records, per_host=10, concurrency=3)
    urls = [f"http://h{i}.test:{site.port}/slow?ms=150" for i in range(6)]
    results = await asyncio.gather(*(check(checker, url) for url in urls))
    assert all(result.status_code == 200 for result in results)
    assert site.site.most_active == 3


async def test_one_slow_host_does_not_hold_up_another(make_checker, site):
    records = {"slow.test": ["127.0.0.1"], "fast.test": ["127.0.0.1"]}
    checker = await make_checker(records, per_host=2, concurrency=10)
    slow = [
        asyncio.ensure_future(check(checker, f"http://slow.test:{site.port}/slow?ms=2000&i={i}"))
        for i in range(6)
    ]
    await asyncio.sleep(0.1)
    fast = await check(checker, f"http://fast.test:{site.port}/ok")
    assert fast.status_code == 200
    assert not any(task.done() for task in slow)  # it finished while slow.test queued
    for task in slow:
        task.cancel()
    await asyncio.gather(*slow, return_exceptions=True)


async def test_host_slots_are_forgotten_when_unused():
    slots = HostSlots(2)
    async with slots.hold("a"), slots.hold("b"):
        assert len(slots) == 2
    assert len(slots) == 0
