"""The shell's only door to a Velo server: a typed httpx client, its error types and streamed queries.

Nothing else in ``velo.cli`` imports httpx; a remote server and a local one look the same from here. Every
4xx/5xx body (``{"error": {...}}``) becomes a :class:`VeloError`; a server that cannot be reached becomes
:class:`ServerUnreachable`, so callers never see a transport traceback.

Streamed results (``POST /query``, NDJSON) are read by a background thread into a queue. The caller waits
on that queue in the main thread, which keeps Ctrl-C (KeyboardInterrupt) out of httpx's internals: the
interrupt lands in ``queue.get`` and :meth:`QueryStream.cancel` tears the stream down cleanly.

TLS: :func:`tls_context` builds the one SSL context a client uses for every connection (requests and
streams). The client runs with ``trust_env=False`` (no proxy variables), so httpx would also ignore
``SSL_CERT_FILE``/``SSL_CERT_DIR``; they are honoured here instead. A certificate that does not verify
becomes :class:`TlsVerificationFailed`, whose one-line message names ``--ca-cert`` and ``--insecure``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

DEFAULT_URL = "http://127.0.0.1:8080"

# The server sends a heartbeat after 5 s of silence; six missed heartbeats means the stream is dead.
STREAM_READ_TIMEOUT_S = 30.0


class VeloError(Exception):
    """An error reported by the server (its ``{"error": {...}}`` body) or met while talking to it."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        line: int | None = None,
        column: int | None = None,
        expected: list[str] | None = None,
        statement: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.line = line
        self.column = column
        self.expected = expected or []
        self.statement = statement

    @classmethod
    def from_body(cls, body: Any, status: int | None = None) -> VeloError:
        """Build from a parsed error body, tolerating bodies that do not follow the contract."""
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return cls(f"http_{status}" if status else "bad_response", str(body)[:500], status=status)

        def _int(key: str) -> int | None:
            v = err.get(key)
            return v if isinstance(v, int) and not isinstance(v, bool) else None

        expected = err.get("expected")
        return cls(
            str(err.get("code") or (f"http_{status}" if status else "error")),
            str(err.get("message") or ""),
            status=status,
            line=_int("line"),
            column=_int("column"),
            expected=[str(x) for x in expected] if isinstance(expected, list) else None,
            statement=_int("statement"),
        )

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class ServerUnreachable(VeloError):
    """The server did not answer at all (connection refused, DNS, TLS, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__("unreachable", f"cannot reach the server at {url} ({reason})")
        self.url = url
        self.reason = reason


class TlsVerificationFailed(ServerUnreachable):
    """The server's TLS certificate did not verify: untrusted issuer, expired, or issued for another name."""

    def __init__(self, url: str, cause: ssl.SSLCertVerificationError) -> None:
        detail = str(cause.verify_message or cause.reason or "certificate verify failed").rstrip(".")
        super().__init__(url, f"TLS certificate not trusted: {detail}")
        self.code = "tls_verification_failed"
        host = urlsplit(url).hostname or url
        if cause.verify_code == X509_V_ERR_HOSTNAME_MISMATCH:
            # Trusting another CA cannot help here: the certificate names another host.
            hint = "connect with a host name the certificate was issued for, or pass --insecure (unsafe)"
        else:
            hint = (
                "if a private CA signed it, pass --ca-cert CA.pem (or set ca_cert in the profile, or "
                "SSL_CERT_FILE); --insecure skips verification (unsafe)"
            )
        self.message = f"cannot verify the TLS certificate of {host} ({detail}): {hint}"


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH: the chain is trusted but the certificate is for another name.
X509_V_ERR_HOSTNAME_MISMATCH = 62


class CaCertError(Exception):
    """A CA certificate (``--ca-cert``, a profile's ``ca_cert``, ``SSL_CERT_FILE``/``SSL_CERT_DIR``) is unusable."""


def tls_context(
    ca_cert: str | Path | None = None, *, insecure: bool = False, env: Mapping[str, str] | None = None
) -> ssl.SSLContext:
    """The SSL context of a client: which certificates it trusts, or none when ``insecure``.

    Trust, first that applies: ``ca_cert`` (a PEM file, or a directory prepared with ``openssl rehash``),
    ``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else certifi's bundle (httpx's default). ``ca_cert`` replaces the
    bundle rather than adding to it, like ``curl --cacert``: only that CA can vouch for the server.
    Raises :class:`CaCertError` when the file cannot be read or holds no certificate.
    """
    if insecure:
        return httpx.create_ssl_context(verify=False)
    env = os.environ if env is None else env
    if ca_cert:
        source, path = "CA certificate", Path(ca_cert).expanduser()
    elif env.get("SSL_CERT_FILE"):
        source, path = "SSL_CERT_FILE", Path(env["SSL_CERT_FILE"])
    elif env.get("SSL_CERT_DIR"):
        source, path = "SSL_CERT_DIR", Path(env["SSL_CERT_DIR"])
    else:
        return httpx.create_ssl_context(verify=True, trust_env=False)
    try:
        if path.is_dir():
            return ssl.create_default_context(capath=str(path))
        return ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:  # an OSError too: caught first
        raise CaCertError(f"the {source} {path} holds no usable PEM certificate ({exc.reason or exc})") from exc
    except FileNotFoundError as exc:
        raise CaCertError(f"cannot read the {source} {path}: no such file") from exc
    except OSError as exc:
        raise CaCertError(f"cannot read the {source} {path}: {exc.strerror or exc}") from exc


def unreachable(url: str, exc: httpx.TransportError) -> ServerUnreachable:
    """The error for a request that never got an answer; a failed certificate check says how to fix it."""
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return TlsVerificationFailed(url, cause)
        if isinstance(cause, ssl.SSLError):
            # Typically WRONG_VERSION_NUMBER: an https:// URL pointed at a server speaking plain HTTP.
            what = cause.reason or "handshake failed"
            return ServerUnreachable(url, f"TLS handshake failed: {what}; if the server serves plain HTTP, use http://")
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return ServerUnreachable(url, "timed out")
    if isinstance(exc, httpx.RemoteProtocolError) and url.startswith("http://"):
        # A TLS server hangs up on a plain-HTTP request without a word: say what is the likely cause.
        return ServerUnreachable(url, f"{_reason(exc).rstrip('.')}; if the server serves HTTPS, use https://")
    return ServerUnreachable(url, _reason(exc))


# --------------------------------------------------------------------------- stream events


@dataclass(frozen=True)
class ColumnInfo:
    """A result column: its name and SQL type (``STRING``, ``DOUBLE`` …; empty when unknown)."""

    name: str
    type: str = ""


@dataclass(frozen=True)
class Header:
    """First line of a streamed query."""

    query_id: str
    columns: list[ColumnInfo]
    emit: str = "none"


@dataclass(frozen=True)
class Row:
    """One result row; ``op``/``key`` are set for updates of an ``EMIT CHANGES`` aggregate."""

    values: list[Any]
    op: str | None = None
    key: list[Any] | None = None


@dataclass(frozen=True)
class Heartbeat:
    """Server keep-alive during silence (milliseconds since the epoch)."""

    at_ms: int


@dataclass(frozen=True)
class Done:
    """Clean end of a stream; ``rows`` is the server's count (``None`` if the client cut it short)."""

    rows: int | None
    reason: str


@dataclass(frozen=True)
class StreamFailed:
    """The query failed after it started, or the stream broke."""

    error: VeloError


Event = Header | Row | Heartbeat | Done | StreamFailed


def parse_event(line: bytes | str) -> Event | None:
    """Decode one NDJSON line of ``POST /query``; ``None`` for blank or unknown lines (forward compatible)."""
    if isinstance(line, str):
        line = line.encode()
    line = line.strip()
    if not line:
        return None
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return StreamFailed(VeloError("bad_response", f"unreadable stream line: {line[:200]!r}"))
    if not isinstance(doc, dict):
        return None
    if "row" in doc:
        row = doc["row"]
        key = doc.get("key")
        return Row(
            list(row) if isinstance(row, list) else [row],
            doc.get("op"),
            list(key) if isinstance(key, list) else (None if key is None else [key]),
        )
    if "header" in doc:
        h = doc["header"] or {}
        cols: list[ColumnInfo] = []
        for c in h.get("columns") or []:
            if isinstance(c, dict):
                cols.append(ColumnInfo(str(c.get("name", "")), str(c.get("type") or "")))
            else:
                cols.append(ColumnInfo(str(c)))
        return Header(str(h.get("query_id") or ""), cols, str(h.get("emit") or "none"))
    if "heartbeat" in doc:
        hb = doc["heartbeat"]
        return Heartbeat(hb if isinstance(hb, int) else 0)
    if "done" in doc:
        d = doc["done"] or {}
        rows = d.get("rows")
        return Done(rows if isinstance(rows, int) else None, str(d.get("reason") or "end_of_input"))
    if "error" in doc:
        return StreamFailed(VeloError.from_body(doc))
    return None


# --------------------------------------------------------------------------- the client


def normalize_url(url: str) -> str:
    """``host:port`` → ``http://host:port``; trailing slashes removed."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def host_port(url: str) -> str:
    """The ``host:port`` shown in the prompt."""
    parts = urlsplit(normalize_url(url))
    host = parts.hostname or "?"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"


class VeloClient:
    """Synchronous client of the Velo HTTP API (one per server; cheap to recreate on ``\\c``)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self._token = token or None
        self._timeout = timeout
        self._transport = transport
        # One context for every connection of this client, the streams' private ones included. A plain-HTTP
        # client (the --local server) gets httpx's default, so the CA variables cannot break it.
        self._verify: ssl.SSLContext | bool = True
        if verify is not None:
            self._verify = verify
        elif self.url.startswith("https://"):
            self._verify = tls_context()
        self._http = self._new_http()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "velo-cli"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _new_http(self, timeout: httpx.Timeout | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers=self._headers(),
            timeout=timeout or httpx.Timeout(self._timeout, connect=5.0),
            transport=self._transport,
            verify=self._verify,
            trust_env=False,  # a stray HTTP(S)_PROXY must not reroute a loopback server
        )

    @property
    def has_token(self) -> bool:
        return self._token is not None

    @property
    def host_port(self) -> str:
        return host_port(self.url)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VeloClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: str | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        headers = {"Content-Type": "text/plain; charset=utf-8"} if content is not None else None
        try:
            resp = self._http.request(
                method,
                path,
                content=orjson.dumps(json) if json is not None else content,
                headers=headers or ({"Content-Type": "application/json"} if json is not None else None),
                params=params,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:  # timeouts included
            raise unreachable(self.url, exc) from exc
        return _decode(resp)

    # ------------------------------------------------------------------ endpoints

    def health(self) -> dict[str, Any]:
        return dict(self._request("GET", "/health") or {})

    def statements(
        self,
        sql: str,
        properties: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        body = {"sql": sql, "properties": dict(properties or {}), "variables": dict(variables or {})}
        doc = self._request("POST", "/statements", json=body) or {}
        results = doc.get("results") if isinstance(doc, dict) else None
        return [r for r in results or [] if isinstance(r, dict)]

    def jobs(self) -> list[dict[str, Any]]:
        doc = self._request("GET", "/jobs") or {}
        return [j for j in doc.get("jobs") or [] if isinstance(j, dict)]

    def job(self, name: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/jobs/{quote(name, safe='')}") or {})

    def create_job(
        self, sql: str, name: str | None = None, properties: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"sql": sql, "properties": dict(properties or {})}
        if name:
            body["name"] = name
        return dict(self._request("POST", "/jobs", json=body) or {})

    def stop_job(self, name: str, force: bool = False) -> dict[str, Any]:
        params = {"force": "true"} if force else None
        return dict(self._request("DELETE", f"/jobs/{quote(name, safe='')}", params=params) or {})

    def pause_job(self, name: str) -> dict[str, Any]:
        return dict(self._request("POST", f"/jobs/{quote(name, safe='')}/pause") or {})

    def resume_job(self, name: str) -> dict[str, Any]:
        return dict(self._request("POST", f"/jobs/{quote(name, safe='')}/resume") or {})

    def catalog(self) -> dict[str, Any]:
        return dict(self._request("GET", "/catalog") or {})

    def topics(self) -> list[dict[str, Any]]:
        doc = self._request("GET", "/topics") or {}
        return [t for t in doc.get("topics") or [] if isinstance(t, dict)]

    def deploy_app(
        self, sql: str, name: str | None = None, variables: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"sql": sql, "variables": dict(variables or {})}
        if name:
            body["name"] = name
        return dict(self._request("POST", "/apps", json=body) or {})

    def cancel_query(self, query_id: str) -> bool:
        """``DELETE /queries/{id}``; ``False`` when the server no longer knows the query (already over)."""
        try:
            # Short timeout: a cancel runs while the user waits for the prompt to come back.
            self._request("DELETE", f"/queries/{quote(query_id, safe='')}", timeout=3.0)
        except VeloError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def open_query(
        self,
        sql: str,
        properties: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> QueryStream:
        """Start ``POST /query`` in the background; read its events with :meth:`QueryStream.get`."""
        body: dict[str, Any] = {"sql": sql, "properties": dict(properties or {})}
        if limit is not None:
            body["limit"] = limit
        stream = QueryStream(self, body)
        stream.start()
        return stream


class _EndOfQueue:
    """Queue sentinel: the reader thread has finished."""


class QueryStream:
    """One streamed query: a reader thread feeding decoded events into a queue.

    Use :meth:`get` to wait for the next event (``None`` on timeout — the caller can then redraw, check a
    deadline, or notice Ctrl-C). :meth:`cancel` asks the server to stop the query and drops the connection.
    """

    def __init__(self, client: VeloClient, body: dict[str, Any]) -> None:
        self._client = client
        self._body = body
        self._queue: queue.Queue[Event | _EndOfQueue] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="velo-query", daemon=True)
        self._cancelled = threading.Event()
        self._sock: socket.socket | None = None
        self._sock_lock = threading.Lock()
        self.query_id: str | None = None
        self.finished = False

    def start(self) -> None:
        self._thread.start()

    # The reader thread -----------------------------------------------------------------

    def _run(self) -> None:
        # A private connection: tearing it down on cancel must not disturb other requests.
        http = self._client._new_http(httpx.Timeout(connect=5.0, read=STREAM_READ_TIMEOUT_S, write=30.0, pool=5.0))
        try:
            with http.stream(
                "POST",
                "/query",
                content=orjson.dumps(self._body),
                headers={"Content-Type": "application/json", "Accept": "application/x-ndjson"},
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._put(StreamFailed(_error_of(resp)))
                    return
                self._remember_socket(resp)
                for line in resp.iter_lines():
                    event = parse_event(line)
                    if event is None:
                        continue
                    if isinstance(event, Header):
                        self.query_id = event.query_id or None
                    self._put(event)
                    if isinstance(event, Done | StreamFailed):
                        return
                if not self._cancelled.is_set():
                    self._put(StreamFailed(VeloError("stream_broken", "the server ended the stream early")))
        except httpx.TimeoutException:
            if not self._cancelled.is_set():
                self._put(StreamFailed(VeloError("stream_stalled", "no data or heartbeat from the server for 30 s")))
        except (httpx.HTTPError, OSError) as exc:
            if not self._cancelled.is_set():
                if self.query_id is None and isinstance(exc, httpx.TransportError):
                    self._put(StreamFailed(unreachable(self._client.url, exc)))
                else:
                    self._put(StreamFailed(VeloError("stream_broken", _reason(exc))))
        finally:
            with contextlib.suppress(Exception):
                http.close()
            self._queue.put(_EndOfQueue())

    def _put(self, event: Event) -> None:
        self._queue.put(event)

    def _remember_socket(self, resp: httpx.Response) -> None:
        stream = resp.extensions.get("network_stream")
        if stream is None:
            return
        with contextlib.suppress(Exception):
            sock = stream.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with self._sock_lock:
                    self._sock = sock

    # The caller's side -----------------------------------------------------------------

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or ``None`` if nothing arrived within ``timeout`` or the stream is over."""
        if self.finished:
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, _EndOfQueue):
            self.finished = True
            return None
        return item

    def cancel(self) -> None:
        """Stop the query: ``DELETE /queries/{id}`` and drop the connection (either alone suffices)."""
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        with self._sock_lock:
            sock = self._sock
        if sock is not None:
            # shutdown() from another thread is safe and wakes the reader's blocking recv at once.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self.query_id:
            with contextlib.suppress(VeloError):
                self._client.cancel_query(self.query_id)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait_closed(self, timeout: float = 2.0) -> None:
        """Wait for the reader thread to finish (bounded: a stuck socket must not hang the shell)."""
        self._thread.join(timeout)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, httpx.ConnectError):
        return text or "connection refused"
    return text or type(exc).__name__


def _error_of(resp: httpx.Response) -> VeloError:
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        text = resp.text.strip() or resp.reason_phrase
        return VeloError(f"http_{resp.status_code}", text[:500], status=resp.status_code)
    return VeloError.from_body(body, resp.status_code)


def _decode(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        raise _error_of(resp)
    if resp.status_code == 204 or not resp.content:
        return None
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError as exc:
        raise VeloError(
            "bad_response", f"the server sent non-JSON: {resp.text[:200]!r}", status=resp.status_code
        ) from exc
