"""A local web site that answers every case a URL check meets, for the crawler's tests
and benchmarks. It binds 127.0.0.1 only, on free ports, and records every request.

    GET|HEAD /ok                    200
    /status/<code>                  that status (404, 500, 410, ...)
    /redirect/<n>                   a 301 chain of n hops ending at 200
    /loop                           302 to itself, forever
    /redirect-to?url=<u>            302 to u (anything: another host, a private address)
    /flaky/<key>?failures=1&status=500   `status` the first `failures` times, then 200
    /retry-after/<key>              429 with Retry-After: 1 the first time, then 200
    /slow?ms=<n>                    200 after n ms
    /hang                           accepts the request and never answers
    /huge                           200 with a 64 MiB body (Content-Length set)
    /huge-chunked                   200 with an endless chunked body
    /bomb                           a gzip bomb: 256 KiB on the wire, 256 MiB unpacked
    /no-head                        405 to HEAD, 200 to GET
    /n/<i>                          the benchmark's mixed statuses (after `latency`)

plus, beside it: an HTTPS server with a self-signed certificate (a bad certificate for
any client that verifies), a TCP port that accepts and never answers, and a port where
nothing listens (connection refused).

`python -m tests.crawlsite --port P --latency-ms 50 --processes 2` serves the same site
from several processes (SO_REUSEPORT), for `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gzip
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.conftest import free_port

HOST = "127.0.0.1"
BOMB_UNPACKED = 256 * 1024 * 1024
HUGE = 64 * 1024 * 1024
SITE = web.AppKey("site", "Site")


@dataclass(frozen=True)
class Hit:
    method: str
    path: str  # with its query
    at: float  # time.monotonic()
    user_agent: str = ""


def loopback_only(url: str) -> str:
    """Every URL a crawler test or benchmark submits passes here: only 127.0.0.0/8 or ::1."""
    from yarl import URL

    host = (URL(url).host or "").strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise AssertionError(
            f"crawler tests submit IP-literal loopback URLs only, not {url}"
        ) from None
    if not address.is_loopback:
        raise AssertionError(f"crawler tests never target {address}: {url}")
    return url


def _gzip_bomb() -> bytes:
    out = gzip.compress(b"\0" * (16 * 1024 * 1024), compresslevel=9)
    # Concatenated gzip members are one valid stream: 16 of them unpack to 256 MiB.
    return out * (BOMB_UNPACKED // (16 * 1024 * 1024))


@dataclass
class Site:
    """The handlers' state: counters per key and every request seen."""

    latency: float = 0.0  # seconds added to every answer (the benchmark's 50 ms)
    hits: list[Hit] = field(default_factory=list)
    record: bool = True
    failures_seen: dict[str, int] = field(default_factory=dict)
    active: int = 0  # requests being answered now
    most_active: int = 0  # the most at any moment
    _bomb: bytes | None = None

    def count(self, path_prefix: str) -> int:
        return sum(1 for hit in self.hits if hit.path.startswith(path_prefix))

    def bomb(self) -> bytes:
        if self._bomb is None:
            self._bomb = _gzip_bomb()
        return self._bomb


@web.middleware
async def _record(request: web.Request, handler):
    site = request.app[SITE]
    if site.record:
        agent = request.headers.get("User-Agent", "")
        site.hits.append(Hit(request.method, request.path_qs, time.monotonic(), agent))
    site.active += 1
    site.most_active = max(site.most_active, site.active)
    try:
        if site.latency and request.path != "/hang":
            await asyncio.sleep(site.latency)
        return await handler(request)
    finally:
        site.active -= 1


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status")


async def redirect_chain(request: web.Request) -> web.Response:
    hops = int(request.match_info["n"])
    if hops <= 0:
        return web.Response(text="arrived")
    return web.Response(status=301, headers={"Location": f"/redirect/{hops - 1}"})


async def loop(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/loop"})


async def redirect_to(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": request.query["url"]})


async def flaky(request: web.Request) -> web.Response:
    site = request.app[SITE]
    key = request.match_info["key"]
    failures = int(request.query.get("failures", "1"))
    seen = site.failures_seen.get(key, 0)
    if seen < failures:
        site.failures_seen[key] = seen + 1
        return web.Response(status=int(request.query.get("status", "500")), text="not yet")
    return web.Response(text="recovered")


async def retry_after(request: web.Request) -> web.Response:
    site = request.app[SITE]
    key = "retry-after:" + request.match_info["key"]
    if not site.failures_seen.get(key):
        site.failures_seen[key] = 1
        return web.Response(status=429, headers={"Retry-After": "1"})
    return web.Response(text="welcome back")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(int(request.query.get("ms", "1000")) / 1000)
    return web.Response(text="finally")


async def hang(request: web.Request) -> web.Response:
    await asyncio.Event().wait()  # until the client goes or the site stops
    raise AssertionError("unreachable")


async def huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = HUGE
    await response.prepare(request)
    if request.method != "HEAD":
        chunk = b"x" * 65536
        with contextlib.suppress(ConnectionError):
            for _ in range(HUGE // len(chunk)):
                await response.write(chunk)
    return response


async def huge_chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = b"y" * 65536
    with contextlib.suppress(ConnectionError):
        for _ in range(100_000):  # 6 GiB: far more than any reader takes
            await response.write(chunk)
    return response


async def bomb(request: web.Request) -> web.Response:
    body = request.app[SITE].bomb()
    return web.Response(
        body=b"" if request.method == "HEAD" else body,
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
    )


async def no_head(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response(status=405, headers={"Allow": "GET"})
    return web.Response(text="GET only")


BENCH_STATUSES = {0: 404, 1: 410, 2: 204}  # i % 20; the rest answer 200 (none retried)


def bench_status(index: int) -> int:
    return BENCH_STATUSES.get(index % 20, 200)


async def numbered(request: web.Request) -> web.Response:
    return web.Response(status=bench_status(int(request.match_info["i"])))


def make_app(site: Site) -> web.Application:
    app = web.Application(middlewares=[_record])
    app[SITE] = site
    routes = [
        ("/ok", ok),
        ("/status/{code:\\d{3}}", status),
        ("/redirect/{n:\\d+}", redirect_chain),
        ("/loop", loop),
        ("/redirect-to", redirect_to),
        ("/flaky/{key}", flaky),
        ("/retry-after/{key}", retry_after),
        ("/slow", slow),
        ("/hang", hang),
        ("/huge", huge),
        ("/huge-chunked", huge_chunked),
        ("/bomb", bomb),
        ("/no-head", no_head),
        ("/n/{i:\\d+}", numbered),
    ]
    for path, handler in routes:
        app.router.add_route("*", path, handler)
    return app


_CERTIFICATE: list[Path] = []  # made once per process: openssl takes a moment


def self_signed_context() -> ssl.SSLContext:
    """A server context with a certificate no client trusts (made by openssl)."""
    if not _CERTIFICATE:
        directory = Path(tempfile.mkdtemp(prefix="agora-crawlsite-"))
        atexit.register(shutil.rmtree, directory, True)
        cert, key = directory / "cert.pem", directory / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        _CERTIFICATE.extend([cert, key])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*_CERTIFICATE)
    return context


@dataclass
class Running:
    """The started site: its base URLs and the addresses of the other cases."""

    site: Site
    port: int
    tls_port: int
    silent_port: int  # accepts TCP and never says anything
    refused_port: int  # nothing listens

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def tls_base(self) -> str:
        return f"https://{HOST}:{self.tls_port}"

    def url(self, path: str) -> str:
        return loopback_only(self.base + path)


class SiteServers:
    """The servers of one site, started and stopped inside a running loop."""

    def __init__(self, site: Site | None = None) -> None:
        self.site = site or Site()
        self._runner: web.AppRunner | None = None
        self._silent: asyncio.Server | None = None
        self._silent_writers: list[asyncio.StreamWriter] = []

    async def start(self) -> Running:
        self._runner = web.AppRunner(make_app(self.site), access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        plain = web.TCPSite(self._runner, HOST, 0)
        await plain.start()
        tls = web.TCPSite(self._runner, HOST, 0, ssl_context=self_signed_context())
        await tls.start()

        async def accept_and_wait(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            self._silent_writers.append(writer)

        self._silent = await asyncio.start_server(accept_and_wait, HOST, 0)
        return Running(
            self.site,
            port=_port_of(plain),
            tls_port=_port_of(tls),
            silent_port=self._silent.sockets[0].getsockname()[1],
            refused_port=free_port(),
        )

    async def stop(self) -> None:
        if self._silent is not None:
            for writer in self._silent_writers:
                writer.close()
            self._silent.close()
        if self._runner is not None:
            await self._runner.cleanup()


def _port_of(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the asyncio.Server here
    assert server is not None and server.sockets
    return server.sockets[0].getsockname()[1]


@contextlib.contextmanager
def site_in_thread(latency: float = 0.0) -> Iterator[Running]:
    """The site served by its own event loop in a thread: for tests that are not async
    (integration and fault tests, which reach the crawler through the ingress)."""
    loop = asyncio.new_event_loop()
    servers = SiteServers(Site(latency=latency))
    started: list[Running] = []
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        started.append(loop.run_until_complete(servers.start()))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="crawlsite", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the local test site did not start")
    try:
        yield started[0]
    finally:
        asyncio.run_coroutine_threadsafe(servers.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


# ---------------------------------------------------------------- make bench


def _serve_process(port: int, latency: float) -> None:
    import uvloop

    async def main() -> None:
        runner = web.AppRunner(make_app(Site(latency=latency, record=False)), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, port, reuse_port=True, backlog=4096).start()
        await asyncio.Event().wait()

    uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    children = []
    for _ in range(args.processes - 1):
        pid = os.fork()
        if pid == 0:
            _serve_process(args.port, args.latency_ms / 1000)
            os._exit(0)
        children.append(pid)
    try:
        _serve_process(args.port, args.latency_ms / 1000)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)


if __name__ == "__main__":
    main()
