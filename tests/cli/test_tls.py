"""``velo-cli`` against a real ``velo-server`` serving HTTPS with a certificate from a private CA.

The CA is a trustme test CA, the server a real process (``--tls-cert``/``--tls-key``, bearer token on),
and ``velo-cli`` runs as a subprocess through its installed entry point, exactly as a user runs it:
without the CA it must fail with a one-line error that names ``--ca-cert`` and ``--insecure``; with
``--ca-cert``, a profile's ``ca_cert`` or ``SSL_CERT_FILE`` it works (statements, admin commands and
streamed queries, which use their own connection); ``--insecure`` works and says what it gave up.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest
import trustme
from velo.cli.config import Config

from tests.cli.fakeserver import FakeServer
from tests.cli.test_pty import PROMPT, spawn
from tests.server.api.conftest import TOKEN, TlsServerProcess

VELO_CLI = str(Path(sys.executable).parent / "velo-cli")


@dataclass
class TlsSetup:
    server: TlsServerProcess
    ca_pem: Path  # the private CA that signed the server's certificate
    other_ca_pem: Path  # a CA that did not
    topic: str  # a topic with three records


@pytest.fixture(scope="module")
def tls(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSetup]:
    from tests.kafka_helpers import create_topic, produce

    root = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = TlsServerProcess(broker, root, ca, "--auth-token", TOKEN)
    ca_pem, other = root / "corp-ca.pem", root / "other-ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    trustme.CA().cert_pem.write_to_path(str(other))
    topic = "tls_records"

    async def fill() -> None:
        await create_topic(broker, topic, 1)
        await produce(broker, topic, [{"symbol": f"T{i}", "price": 10.0 + i} for i in range(3)])

    asyncio.run(fill())
    yield TlsSetup(server, ca_pem, other, topic)
    server.stop()


def velo_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    return subprocess.run(
        [VELO_CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def assert_one_line_tls_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and TOKEN not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("ERROR cannot verify the TLS certificate of 127.0.0.1"), lines[0]
    return lines[0]


def test_untrusted_private_ca_fails_with_a_clear_one_line_error(tls: TlsSetup) -> None:
    url = tls.server.url
    for args in (["-e", "SHOW JOBS;"], ["jobs"], ["health"], ["-e", f"SELECT symbol FROM {tls.topic};"]):
        line = assert_one_line_tls_error(velo_cli(url, "--token", TOKEN, *args))  # the command line
        assert "unable to get local issuer certificate" in line
        assert "--ca-cert" in line and "--insecure" in line


def test_a_ca_that_did_not_sign_the_certificate_is_refused(tls: TlsSetup) -> None:
    line = assert_one_line_tls_error(velo_cli(tls.server.url, "jobs", "--ca-cert", str(tls.other_ca_pem)))
    assert "--ca-cert" in line


def test_ca_cert_flag_trusts_the_private_ca(tls: TlsSetup) -> None:
    url, ca = tls.server.url, str(tls.ca_pem)
    shown = velo_cli(url, "--token", TOKEN, "--ca-cert", ca, "-e", "SHOW JOBS;")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].startswith("name\t") and shown.stderr == ""
    health = velo_cli("health", "--server", url, "--token", TOKEN, "--ca-cert", ca)
    assert health.returncode == 0 and "status\tok" in health.stdout, health.stderr
    # A streamed query opens its own connection: it must trust the same CA.
    printed = velo_cli(url, "--token", TOKEN, "--ca-cert", ca, "print", tls.topic, "--from-beginning", "--limit", "3")
    assert printed.returncode == 0, printed.stderr
    assert [line.count('"symbol"') for line in printed.stdout.splitlines()] == [1, 1, 1], printed.stdout
    # The token still matters over TLS: a trusted server that refuses the client is not a TLS problem.
    refused = velo_cli(url, "jobs", "--ca-cert", ca)
    assert refused.returncode == 1 and "unauthorized" in refused.stderr


def test_profile_ca_cert_relative_to_the_config_file(tls: TlsSetup, tmp_path: Path) -> None:
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "velo" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    (cfg.parent / "corp-ca.pem").write_bytes(tls.ca_pem.read_bytes())
    cfg.write_text(f'[profiles.corp]\nurl = "{tls.server.url}"\ntoken = "{TOKEN}"\nca_cert = "corp-ca.pem"\n')
    # Run from another folder: the relative path is the config file's, not the working directory's.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    p = velo_cli("--profile", "corp", "-e", "SHOW JOBS;", cwd=elsewhere)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("name\t")
    assert velo_cli("--profile", "corp", "jobs", cwd=elsewhere).returncode == 0


def test_ssl_cert_file_and_dir_are_honoured(tls: TlsSetup, tmp_path: Path) -> None:
    p = velo_cli(tls.server.url, "jobs", "--token", TOKEN, env={"SSL_CERT_FILE": str(tls.ca_pem)})
    assert p.returncode == 0, p.stderr
    # A hashed directory (what `openssl rehash` makes), as SSL_CERT_DIR or as --ca-cert.
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "corp-ca.pem").write_bytes(tls.ca_pem.read_bytes())
    subprocess.run(["openssl", "rehash", str(certs)], check=True, capture_output=True, timeout=30)
    d = velo_cli(tls.server.url, "jobs", "--token", TOKEN, env={"SSL_CERT_DIR": str(certs)})
    assert d.returncode == 0, d.stderr
    assert velo_cli(tls.server.url, "jobs", "--token", TOKEN, "--ca-cert", str(certs)).returncode == 0
    # --ca-cert wins over the environment.
    q = velo_cli(tls.server.url, "jobs", "--ca-cert", str(tls.other_ca_pem), env={"SSL_CERT_FILE": str(tls.ca_pem)})
    assert q.returncode == 3


def test_insecure_works_and_warns_once(tls: TlsSetup) -> None:
    p = velo_cli(tls.server.url, "--token", TOKEN, "--insecure", "-e", "SHOW JOBS;", "-e", "SHOW JOBS;")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("name\t") == 2
    warnings = [line for line in p.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, p.stderr
    assert "--insecure" in warnings[0] and "not verified" in warnings[0] and "impersonate" in warnings[0]
    admin = velo_cli("jobs", "--insecure", "--server", tls.server.url, "--token", TOKEN)
    assert admin.returncode == 0 and admin.stderr.count("WARNING") == 1, admin.stderr
    # Without --insecure, no such warning.
    assert "WARNING" not in velo_cli(tls.server.url, "health", "--ca-cert", str(tls.ca_pem)).stderr


def test_certificate_for_another_host_says_so(tls: TlsSetup) -> None:
    # The certificate names 127.0.0.1 only: via "localhost" the CA is trusted but the name is wrong.
    url = f"https://localhost:{tls.server.port}"
    p = velo_cli(url, "jobs", "--ca-cert", str(tls.ca_pem))
    assert p.returncode == 3 and "Traceback" not in p.stderr
    assert "cannot verify the TLS certificate of localhost" in p.stderr
    assert "Hostname mismatch" in p.stderr and "host name the certificate was issued for" in p.stderr


def test_unusable_ca_cert_is_a_usage_error(tls: TlsSetup, tmp_path: Path) -> None:
    missing = velo_cli(tls.server.url, "jobs", "--ca-cert", str(tmp_path / "nope.pem"))
    assert missing.returncode == 2 and "cannot read the CA certificate" in missing.stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    bad = velo_cli(tls.server.url, "--ca-cert", str(junk), "-e", "SHOW JOBS;")
    assert bad.returncode == 2 and "holds no usable PEM certificate" in bad.stderr
    env_missing = velo_cli(tls.server.url, "jobs", env={"SSL_CERT_FILE": str(tmp_path / "nope.pem")})
    assert env_missing.returncode == 2 and "SSL_CERT_FILE" in env_missing.stderr
    assert "Traceback" not in missing.stderr + bad.stderr + env_missing.stderr


def test_shell_says_which_flag_to_use(tls: TlsSetup, tmp_path: Path) -> None:
    child = spawn(tls.server.url, tmp_path, "--token", TOKEN)
    try:
        child.expect(r"ERROR cannot verify the TLS certificate of 127\.0\.0\.1 .*--ca-cert")
        child.expect(PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
    trusted = spawn(tls.server.url, tmp_path, "--token", TOKEN, "--ca-cert", str(tls.ca_pem))
    try:
        trusted.expect("Connected to")
        trusted.expect(PROMPT)
        trusted.sendline("SHOW JOBS;")
        trusted.expect(r"rows? in \d+\.\ds")
        trusted.expect(PROMPT)
        trusted.sendeof()
        trusted.expect(pexpect.EOF)
    finally:
        if trusted.isalive():
            trusted.terminate(force=True)
    assert "Traceback" not in (trusted.before or "")


def test_wrong_scheme_is_explained(tls: TlsSetup, fake_server: FakeServer) -> None:
    plain_to_tls = velo_cli(f"http://127.0.0.1:{tls.server.port}", "jobs")
    assert plain_to_tls.returncode == 3 and "Traceback" not in plain_to_tls.stderr
    assert "if the server serves HTTPS, use https://" in plain_to_tls.stderr
    tls_to_plain = velo_cli(fake_server.url.replace("http://", "https://"), "jobs")
    assert tls_to_plain.returncode == 3 and "Traceback" not in tls_to_plain.stderr
    assert "TLS handshake failed" in tls_to_plain.stderr and "use http://" in tls_to_plain.stderr


def test_shell_connect_to_a_profile_uses_its_ca_cert(tls: TlsSetup, fake_server: FakeServer, tmp_path: Path) -> None:
    from prompt_toolkit.input import create_pipe_input

    from tests.cli.test_repl import drive, make_repl

    (tmp_path / "corp-ca.pem").write_bytes(tls.ca_pem.read_bytes())
    config = Config(
        profiles={"corp": {"url": tls.server.url, "token": TOKEN, "ca_cert": "corp-ca.pem"}},
        path=tmp_path / "config.toml",
    )
    with create_pipe_input() as pipe:
        repl, out = make_repl(fake_server.url, pipe, config=config)
        # \c PROFILE trusts that profile's CA; \c URL keeps the startup settings (no CA given: refused).
        drive(repl, pipe, "\\c corp\rSHOW JOBS;\r\\c " + tls.server.url + "\r\x04")
    text = out.getvalue()
    assert "| name" in text and "records_in" in text, text
    assert "ERROR cannot verify the TLS certificate of 127.0.0.1" in text and "--ca-cert" in text
    assert repl.client.url == tls.server.url and repl.session.connected is False
