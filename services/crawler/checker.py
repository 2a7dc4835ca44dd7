"""Checking one URL: what its server answers, safely and within bounds.

One aiohttp ClientSession per worker process, of its own (not the kit's client, which
calls our services): trust_env off (no proxy or netrc from the environment), no cookies
kept between checks, no decompression (Accept-Encoding: identity, auto_decompress off:
a gzip bomb is read as the few bytes it is), a User-Agent naming Agora, and a connector
whose resolver and socket factory apply the SSRF policy (services.crawler.guard).

A check follows redirects itself, one hop at a time (each target checked against the
policy before it is requested), at most `max_redirects`; sends HEAD and falls back to GET
when a server refuses HEAD (405, 501), or GET alone; reads at most CRAWLER_MAX_BODY_BYTES
of a GET's body (status and headers are what matter: a longer body is the error
body_too_large); is retried with exponential backoff and jitter (Retry-After honoured, up
to a cap) after 429, 5xx or a timeout, CRAWLER_RETRIES times at most; runs at most
CRAWLER_PER_HOST_CONCURRENCY at once per host and CRAWLER_WORKER_CONCURRENCY at once in
the process (one slot per attempt, none held during a backoff pause).

The outcome is a CheckResult: the final status code, the URL it came from, the number of
redirects, the time taken, and an error (None when the URL answered below 400):
dns, connect, ssl, timeout, http (detail: the status code, or what was wrong with the
answer), too_many_redirects, body_too_large or blocked (nothing was sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from .guard import (
    BlockedAddress,
    GuardedResolver,
    IPNetwork,
    Policy,
    SocketFactory,
    blocked_reason,
    guarded_socket_factory,
)
from .metrics import CHECKS, DURATION, IN_FLIGHT, RETRIES, SLOTS
from .urls import InvalidUrl, ip_literal, normalize_url

REDIRECTS = frozenset({301, 302, 303, 307, 308})
HEAD_REFUSED = frozenset({405, 501})
KINDS = (
    "dns",
    "connect",
    "ssl",
    "timeout",
    "http",
    "too_many_redirects",
    "body_too_large",
    "blocked",
)
OUTCOMES = ("ok", *KINDS)
CHUNK = 64 * 1024


@dataclass(frozen=True)
class CheckOptions:
    """A task's options (bounded by the API's model)."""

    timeout: float = 10.0  # seconds per attempt, redirects included
    max_redirects: int = 5
    method: str = "HEAD"  # HEAD (GET when refused) or GET


@dataclass(frozen=True)
class CheckerConfig:
    """The worker's settings for checks."""

    user_agent: str = "Agora-crawler/1.0 (URL checker of Agora)"
    connect_timeout: float = 5.0
    max_body_bytes: int = 1024 * 1024
    retries: int = 2
    backoff: float = 0.5  # the first pause; doubled each time, with jitter
    max_backoff: float = 10.0  # also the most of a Retry-After that is honoured
    per_host: int = 8
    concurrency: int = 50
    allowed_networks: tuple[IPNetwork, ...] = ()
    dns_cache_seconds: float = 10.0


@dataclass
class CheckResult:
    status_code: int | None = None
    final_url: str | None = None
    redirects: int = 0
    elapsed_ms: float = 0.0
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    error_kind: str | None = None
    error_detail: str | int | None = None
    attempts: int = 0
    retry_after: float | None = field(default=None, repr=False)

    @property
    def outcome(self) -> str:
        return self.error_kind or "ok"

    @property
    def error(self) -> dict[str, object] | None:
        return (
            None
            if self.error_kind is None
            else {"kind": self.error_kind, "detail": self.error_detail}
        )

    @property
    def retryable(self) -> bool:
        if self.error_kind == "timeout":
            return True
        return (
            self.status_code is not None
            and (self.status_code == 429 or self.status_code >= 500)
            and self.error_kind == "http"
        )


class HostSlots:
    """At most `per_host` holders per host; a host's entry lives while it is used."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        semaphore, users = self._slots.setdefault(host, (asyncio.Semaphore(self.per_host), [0]))
        users[0] += 1
        try:
            async with semaphore:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._slots[host]

    def __len__(self) -> int:
        return len(self._slots)


def _retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
        when = parsedate_to_datetime(value)
        return max(0.0, min((when - datetime.now(UTC)).total_seconds(), cap))
    return None


class Checker:
    """Checks URLs through one guarded session; `start()` inside the loop, `close()` after.

    `resolver` is the DNS lookup behind the guard (aiohttp's ThreadedResolver: the
    system's) and `make_socket` what creates a socket the guard approved (socket.socket);
    tests replace both, to resolve names to loopback and to see every connection attempt.
    """

    def __init__(
        self,
        config: CheckerConfig,
        *,
        resolver: AbstractResolver | None = None,
        make_socket: SocketFactory | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.policy = Policy(config.allowed_networks)
        self._resolver = resolver
        self._make_socket = make_socket
        self._ssl = ssl_context or ssl.create_default_context()
        self._hosts = HostSlots(config.per_host)
        self._slots = asyncio.Semaphore(config.concurrency)
        self._session: aiohttp.ClientSession | None = None
        self.in_flight = 0  # attempts running now (IN_FLIGHT sums them over processes)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._resolver or aiohttp.ThreadedResolver(), self.policy),
            socket_factory=guarded_socket_factory(self.policy, self._make_socket),
            ssl=self._ssl,
            limit=self.config.concurrency * 2,
            limit_per_host=0,  # HostSlots limits per host name, whatever its addresses
            ttl_dns_cache=self.config.dns_cache_seconds,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={
                "User-Agent": self.config.user_agent,
                "Accept": "*/*",
                "Accept-Encoding": "identity",
            },
        )
        SLOTS.inc(self.config.concurrency)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            SLOTS.dec(self.config.concurrency)

    async def __aenter__(self) -> Checker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- one URL

    async def check(self, url: str, options: CheckOptions) -> CheckResult:
        """The result of checking `url` (a normalized URL), retries included."""
        started = time.perf_counter()
        parsed = URL(url, encoded=True)
        host = parsed.host or ""
        attempts = 0
        while True:
            attempts += 1
            async with self._hosts.hold(host), self._slots:
                IN_FLIGHT.inc()
                self.in_flight += 1
                try:
                    result = await self._attempt(parsed, options)
                finally:
                    IN_FLIGHT.dec()
                    self.in_flight -= 1
            if attempts > self.config.retries or not result.retryable:
                break
            RETRIES.inc()
            await asyncio.sleep(self._pause(attempts, result.retry_after))
        result.attempts = attempts
        result.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        result.checked_at = datetime.now(UTC)
        CHECKS.labels(result.outcome).inc()
        DURATION.labels(result.outcome).observe(result.elapsed_ms / 1000)
        return result

    def _pause(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(self.config.max_backoff, self.config.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def _attempt(self, url: URL, options: CheckOptions) -> CheckResult:
        result = CheckResult(final_url=str(url))
        try:
            async with asyncio.timeout(options.timeout):
                await self._follow(url, options, result)
        except TimeoutError:
            result.error_kind, result.error_detail = (
                "timeout",
                f"no answer within {options.timeout:g} s",
            )
        except Exception as error:  # classified; anything unknown is a connect error
            result.error_kind, result.error_detail = classify(error)
        return result

    async def _follow(self, url: URL, options: CheckOptions, result: CheckResult) -> None:
        assert self._session is not None, "Checker.start() first"
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.config.connect_timeout, sock_read=options.timeout
        )
        current = url
        while True:
            self._check_literal(current)
            method = options.method
            while True:
                async with self._session.request(
                    method, current, allow_redirects=False, timeout=timeout
                ) as response:
                    status = response.status
                    if method == "HEAD" and status in HEAD_REFUSED:
                        method = "GET"  # the same hop again
                        continue
                    result.status_code = status
                    result.final_url = str(current)
                    location = response.headers.get("Location")
                    if status in REDIRECTS and location:
                        result.redirects += 1
                        if result.redirects > options.max_redirects:
                            result.error_kind = "too_many_redirects"
                            result.error_detail = f"more than {options.max_redirects}"
                            return
                        current = redirect_target(current, location)
                        break  # the next hop
                    if status >= 400:
                        result.error_kind, result.error_detail = "http", status
                        if status == 429 or status >= 500:
                            result.retry_after = _retry_after(
                                response.headers.get("Retry-After"), self.config.max_backoff
                            )
                    too_large = method == "GET" and await self._too_large(response)
                    if too_large and result.error_kind is None:
                        result.error_kind = "body_too_large"
                        result.error_detail = f"more than {self.config.max_body_bytes} bytes"
                    return

    def _check_literal(self, url: URL) -> None:
        """IP-literal hosts never reach the resolver: the policy is applied here."""
        host = url.raw_host or ""
        literal = ip_literal(host)
        if literal is not None:
            self.policy.check(host, literal)

    async def _too_large(self, response: aiohttp.ClientResponse) -> bool:
        """Reads the body up to the cap; True when it is longer (the rest is not read:
        leaving the response closes the connection)."""
        cap = self.config.max_body_bytes
        if response.content_length is not None and response.content_length > cap:
            return True
        read = 0
        async for chunk in response.content.iter_chunked(CHUNK):
            read += len(chunk)
            if read > cap:
                return True
        return False


def redirect_target(current: URL, location: str) -> URL:
    """Where a redirect points, normalized; a non-HTTP target is blocked."""
    try:
        target = current.join(URL(location))
    except (ValueError, TypeError) as error:
        raise InvalidUrl(f"redirect to an invalid URL {location[:200]!r}: {error}") from None
    if target.scheme not in ("http", "https"):
        raise BlockedAddress(
            location[:200], location[:200], "not HTTP: redirects are followed to http(s) only"
        )
    try:
        return normalize_url(target)
    except InvalidUrl as error:
        raise InvalidUrl(f"redirect to an invalid URL {location[:200]!r}: {error}") from None


def classify(error: BaseException) -> tuple[str, str]:
    """An exception of a check as (kind, detail)."""
    reason = blocked_reason(error)
    if reason is not None:
        return "blocked", reason
    if isinstance(error, InvalidUrl):
        return "http", str(error)
    if isinstance(error, TimeoutError):  # aiohttp's connect and read timeouts included
        return "timeout", str(error) or type(error).__name__
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return "ssl", f"SSL_ERROR: {error.certificate_error}"
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        return "ssl", f"SSL_ERROR: {error}"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return "dns", str(error.os_error)
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connect", str(error.os_error)
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return "connect", str(error) or type(error).__name__
    if isinstance(error, aiohttp.ClientResponseError):  # an answer that is not HTTP
        return "http", f"invalid response: {error.message}"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "http", f"invalid body: {error}"
    if isinstance(error, aiohttp.InvalidURL):
        return "http", f"invalid URL: {error}"
    return "connect", f"{type(error).__name__}: {error}"
