"""``velo-cli`` entry point: argument parsing (click) and the choice of mode.

Modes: the interactive shell (``velo-cli [URL]`` on a terminal), batch (``-e``/``-f`` or piped stdin) and
one-shot admin subcommands (``jobs``, ``status``, ``health``, ``topics``, ``deploy-app``, ``stop``,
``pause``, ``resume``, ``print``). A first positional argument that is not a subcommand is the server URL.

Exit codes: 0 success; 1 a statement/command failed; 2 usage error; 3 server unreachable; 130 interrupted
in batch mode.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from velo.cli import render
from velo.cli.client import CaCertError, ServerUnreachable, VeloClient, VeloError, tls_context
from velo.cli.config import Config, ConfigError, Connection, load_config, open_client, resolve_connection
from velo.cli.session import OutputSettings, Session

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

INSECURE_WARNING = (
    "WARNING: --insecure: the server's TLS certificate is not verified, so anyone on the network path can "
    "impersonate the server and read the token, the statements and the results"
)

F = TypeVar("F", bound=Callable[..., Any])


def _var(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        if "=" not in item or not item.split("=", 1)[0]:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}")
    return value


def connection_options(f: F) -> F:
    """Flags every mode accepts (before or after the subcommand)."""
    for opt in reversed(
        [
            click.option(
                "--server",
                "server",
                metavar="URL",
                help="Server URL (default: $VELO_SERVER, profile, http://127.0.0.1:8080).",
            ),
            click.option("--profile", metavar="NAME", help="Profile from ~/.config/velo/config.toml."),
            click.option("--token", metavar="TOKEN", help="Bearer token (or $VELO_TOKEN); never echoed."),
            click.option(
                "--ca-cert",
                "ca_cert",
                metavar="PATH",
                help="Trust the CA in PATH (PEM) for an https:// server (default: profile ca_cert, "
                "$SSL_CERT_FILE, $SSL_CERT_DIR, certifi).",
            ),
            click.option(
                "--insecure",
                is_flag=True,
                default=False,
                help="Do not verify the server's TLS certificate (anyone on the path can impersonate it).",
            ),
            click.option(
                "--output",
                "-o",
                type=click.Choice(render.FORMATS),
                help="Output format (batch default: tsv for tables, jsonl for streams).",
            ),
        ]
    ):
        f = opt(f)
    return f


def shell_options(f: F) -> F:
    """Flags of the shell and batch modes."""
    for opt in reversed(
        [
            click.option(
                "-e",
                "--execute",
                "execute",
                multiple=True,
                metavar="SQL",
                help="Run SQL and exit (repeatable).",
            ),
            click.option(
                "-f",
                "--file",
                "file",
                metavar="FILE|-",
                help="Run the statements of FILE (- for stdin) and exit.",
            ),
            click.option(
                "--var",
                "var",
                multiple=True,
                metavar="NAME=VALUE",
                callback=_var,
                help="Variable for ${NAME} substitution (repeatable).",
            ),
            click.option(
                "--on-error",
                type=click.Choice(["stop", "continue"]),
                default=None,
                help="Batch: stop at the first failure (default) or continue.",
            ),
            click.option(
                "--limit",
                type=click.IntRange(min=1),
                default=None,
                help="Batch: at most N rows per streaming query.",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0, min_open=True),
                default=None,
                help="Batch: stop streaming queries after S seconds.",
            ),
            click.option(
                "--local",
                is_flag=True,
                default=False,
                help="Start a private velo-server --embedded-kafka for this session.",
            ),
            click.option("--vi", is_flag=True, default=None, help="vi key bindings in the shell."),
        ]
    ):
        f = opt(f)
    return f


def _merge(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """Options given before the subcommand (parent) and after it (here): the later one wins; lists add."""
    merged: dict[str, Any] = {}
    parent = ctx.parent.params if ctx.parent is not None else {}
    for key in set(parent) | set(params):
        a, b = parent.get(key), params.get(key)
        if isinstance(a, tuple) or isinstance(b, tuple):
            merged[key] = tuple(a or ()) + tuple(b or ())
        else:
            merged[key] = b if b not in (None, False) else a
    return merged


@dataclass
class Context:
    """Everything a mode needs, resolved once from flags, environment and config."""

    config: Config
    conn: Connection
    params: dict[str, Any] = field(default_factory=dict)

    def variables(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.params.get("var") or ())

    def client(self) -> VeloClient:
        # The CA was checked in _context: this cannot raise CaCertError unless the file changed since.
        return open_client(self.conn, timeout=self.params.get("http_timeout") or 30.0)


def _context(params: dict[str, Any], url: str | None = None) -> Context:
    ctx = click.get_current_context(silent=True)
    if url is None and ctx is not None:
        url = ctx.find_root().meta.get("velo.url")
    try:
        config = load_config()
        conn = resolve_connection(
            config,
            url=params.get("server") or url,
            profile=params.get("profile"),
            token=params.get("token"),
            output=params.get("output"),
            ca_cert=params.get("ca_cert"),
            insecure=bool(params.get("insecure")),
        )
        # Load the CA now: an unreadable --ca-cert is a usage error before anything is sent.
        tls_context(conn.ca_cert, insecure=conn.insecure)
    except (ConfigError, CaCertError) as exc:
        raise click.UsageError(str(exc)) from exc
    if conn.insecure:
        # Once per run (one _context per invocation), before any request: the user must know.
        click.echo(render.red(INSECURE_WARNING, sys.stderr.isatty()), err=True)
    return Context(config, conn, params)


class VeloGroup(click.Group):
    """A group whose first positional may be the server URL instead of a subcommand."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            at = self._subcommand_after_url(args)
            if at is not None:
                # velo-cli URL [connection flags] jobs: the URL serves the subcommand like --server would.
                # Parsing stopped at the URL, so flags between it and the subcommand are still in args:
                # hand them to the subcommand, which accepts every connection flag too.
                ctx.meta["velo.url"] = args[0]
                return super().resolve_command(ctx, [args[at], *args[1:at], *args[at + 1 :]])
            return "shell", self.commands["shell"], args
        return super().resolve_command(ctx, args)

    def _subcommand_after_url(self, args: list[str]) -> int | None:
        """Index of the subcommand in ``URL [connection flags] SUBCOMMAND …``; ``None`` for the shell."""
        i = 1
        while i < len(args):
            arg = args[i]
            if arg in self.commands:
                return None if arg == "shell" else i
            name = arg.split("=", 1)[0]
            if name in _CONNECTION_VALUE_OPTIONS:
                i += 1 if "=" in arg else 2  # skip the value: `--token jobs` is a token, not a command
            elif arg in _CONNECTION_FLAGS:
                i += 1
            else:
                return None
        return None


def _connection_probe() -> None:
    """Carrier of connection_options() for the two sets below."""


# What may stand between a URL and its subcommand, taken from connection_options() so they cannot drift.
_CONNECTION_PARAMS = [
    p for p in click.command()(connection_options(_connection_probe)).params if isinstance(p, click.Option)
]
_CONNECTION_VALUE_OPTIONS = frozenset(o for p in _CONNECTION_PARAMS if not p.is_flag for o in p.opts)
_CONNECTION_FLAGS = frozenset(o for p in _CONNECTION_PARAMS if p.is_flag for o in p.opts)


@click.group(cls=VeloGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@connection_options
@shell_options
@click.version_option(package_name="velo", prog_name="velo-cli")
@click.pass_context
def cli(ctx: click.Context, /, **params: Any) -> int | None:
    """Velo SQL shell and admin client.

    \b
    velo-cli [URL]                    interactive shell (batch with -e/-f or piped stdin)
    velo-cli jobs|status|health|topics|deploy-app|stop|pause|resume|print ...
    """
    if ctx.invoked_subcommand is None:
        return run_shell(_context(params))
    return None


@cli.command("shell", hidden=True)
@click.argument("url", required=False)
@connection_options
@shell_options
@click.pass_context
def shell_cmd(ctx: click.Context, /, url: str | None, **params: Any) -> int:
    """Interactive shell against URL."""
    merged = _merge(ctx, params)
    return run_shell(_context(merged, url))


# --------------------------------------------------------------------------- shell & batch


def run_shell(c: Context) -> int:
    p = c.params
    execute: tuple[str, ...] = p.get("execute") or ()
    file: str | None = p.get("file")
    if p.get("local"):
        return _with_local(c)
    batch = bool(execute or file) or not sys.stdin.isatty()
    if batch:
        return run_batch(c, execute, file)
    from velo.cli.repl import Repl  # prompt_toolkit only when a prompt is needed

    return Repl(c.conn, c.config, vi=p.get("vi"), variables=c.variables()).run()


def _with_local(c: Context) -> int:
    from velo.cli.local import LocalServer, LocalServerError

    server = LocalServer()
    click.echo(f"starting a local velo-server on {server.url} (log: {server.log_path}) …", err=True)
    try:
        server.start()
    except LocalServerError as exc:
        click.echo(render.red(f"ERROR {exc}", sys.stderr.isatty()), err=True)
        return EXIT_UNREACHABLE
    try:
        params = dict(c.params, local=False)
        local = Context(c.config, Connection(server.url, None, c.conn.output, None), params)
        return run_shell(local)
    finally:
        server.stop()


def _read_file(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc


def batch_settings(c: Context) -> OutputSettings:
    out = c.params.get("output")
    return OutputSettings(
        fmt=out or "tsv",
        stream_fmt=out or "jsonl",
        color=False,
        timing=False,
        live=False,
        pager=None,
        interactive=False,
        limit=c.params.get("limit"),
        timeout=c.params.get("timeout"),
    )


def run_batch(c: Context, execute: tuple[str, ...], file: str | None) -> int:
    """Run ``-e`` texts, then ``-f`` (or piped stdin); exit code per the module docstring."""
    texts: list[tuple[str, str]] = [(sql, "-e") for sql in execute]
    if file:
        texts.append((_read_file(file), file))
    elif not execute:
        texts.append((sys.stdin.read(), "-"))
    on_error = c.params.get("on_error") or "stop"
    failed = False
    with c.client() as client:
        session = Session(client, batch_settings(c), variables=c.variables())
        for text, _origin in texts:
            try:
                result = session.run_text(text, on_error=on_error)
            except KeyboardInterrupt:
                return EXIT_INTERRUPTED
            except BrokenPipeError:
                return _reader_gone()
            if result.unreachable:
                return EXIT_UNREACHABLE
            if result.interrupted:
                return EXIT_INTERRUPTED
            if not result.ok:
                failed = True
                if on_error == "stop":
                    return EXIT_FAILED
    return EXIT_FAILED if failed else EXIT_OK


# --------------------------------------------------------------------------- admin subcommands


def admin_format(c: Context) -> str:
    return c.params.get("output") or ("table" if sys.stdout.isatty() else "tsv")


def _print_rows(c: Context, columns: list[str], rows: list[list[Any]]) -> None:
    click.echo(render.render(admin_format(c), columns, rows))


def _err(text: str) -> None:
    click.echo(render.red(text, sys.stderr.isatty()), err=True)


@contextlib.contextmanager
def _admin(ctx: click.Context, params: dict[str, Any]) -> Iterator[tuple[Context, VeloClient]]:
    c = _context(_merge(ctx, params))
    with c.client() as client:
        yield c, client


def _admin_call(fn: Callable[[], int | None]) -> int:
    """Run one admin action, turning server errors into messages and exit codes."""
    try:
        return fn() or EXIT_OK
    except ServerUnreachable as exc:
        _err(f"ERROR {exc.message}")
        return EXIT_UNREACHABLE
    except VeloError as exc:
        _err(render.format_error(exc))
        return EXIT_FAILED


@cli.command("jobs")
@connection_options
@click.pass_context
def jobs_cmd(ctx: click.Context, /, **params: Any) -> int:
    """List jobs with their state and metrics."""
    with _admin(ctx, params) as (c, client):
        return _admin_call(lambda: _print_rows(c, render.JOB_COLUMNS, [render.job_row(j) for j in client.jobs()]))


@cli.command("status")
@click.argument("job", required=False)
@connection_options
@click.pass_context
def status_cmd(ctx: click.Context, /, job: str | None, **params: Any) -> int:
    """Server summary and jobs, or one JOB in full (state history included)."""
    with _admin(ctx, params) as (c, client):

        def run() -> int:
            if job:
                detail = client.job(job)
                cols, rows = render.job_detail(detail)
                _print_rows(c, cols, rows)
                hcols, hrows = render.job_history(detail)
                if hrows:
                    click.echo()
                    _print_rows(c, hcols, hrows)
                return EXIT_FAILED if detail.get("state") == "FAILED" else EXIT_OK
            cols, rows = render.health_rows(client.health())
            _print_rows(c, cols, rows)
            click.echo()
            _print_rows(c, render.JOB_COLUMNS, [render.job_row(j) for j in client.jobs()])
            return EXIT_OK

        return _admin_call(run)


@cli.command("health")
@connection_options
@click.pass_context
def health_cmd(ctx: click.Context, /, **params: Any) -> int:
    """Server health; exit 1 when the server reports itself degraded."""
    with _admin(ctx, params) as (c, client):

        def run() -> int:
            h = client.health()
            _print_rows(c, *render.health_rows(h))
            return EXIT_OK if h.get("status") == "ok" else EXIT_FAILED

        return _admin_call(run)


@cli.command("topics")
@connection_options
@click.pass_context
def topics_cmd(ctx: click.Context, /, **params: Any) -> int:
    """Kafka topics with partitions and end offsets."""
    with _admin(ctx, params) as (c, client):
        return _admin_call(lambda: _print_rows(c, *render.topic_rows(client.topics())))


@cli.command("deploy-app")
@click.argument("file")
@click.option(
    "--var",
    "var",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_var,
    help="Variable for ${NAME} (repeatable).",
)
@click.option("--name", "app_name", default=None, help="App name (default: the file's -- @app: annotation).")
@connection_options
@click.pass_context
def deploy_app_cmd(ctx: click.Context, /, file: str, app_name: str | None, **params: Any) -> int:
    """Deploy a SQL application file (all-or-nothing); print each job and its state."""
    text = _read_file(file)
    with _admin(ctx, params) as (c, client):

        def run() -> int:
            try:
                app = client.deploy_app(text, app_name, c.variables())
            except ServerUnreachable:
                raise
            except VeloError as exc:
                # The server names the statement and line in the file: show the caret in the file text.
                _err(f"{file}: app rejected")
                _err(render.format_error(exc, text))
                return EXIT_FAILED
            jobs = [j for j in app.get("jobs") or [] if isinstance(j, dict)]
            click.echo(f"app {app.get('name')}: {len(jobs)} job(s)")
            for j in jobs:
                click.echo(f"  {j.get('name')}\t{j.get('state')}")
            bad = [j for j in jobs if j.get("state") in ("FAILED", "STOPPED")]
            return EXIT_FAILED if bad else EXIT_OK

        return _admin_call(run)


def _job_action(action: str) -> Callable[..., int]:
    def command(ctx: click.Context, job: str, force: bool = False, **params: Any) -> int:
        with _admin(ctx, params) as (_c, client):

            def run() -> int:
                if action == "stop":
                    j = client.stop_job(job, force=force)
                elif action == "pause":
                    j = client.pause_job(job)
                else:
                    j = client.resume_job(job)
                click.echo(f"{j.get('name', job)}\t{j.get('state', '?')}")
                return EXIT_OK

            return _admin_call(run)

    return command


for _action, _help in (
    ("stop", "Stop JOB (drain, commit, release)."),
    ("pause", "Pause JOB."),
    ("resume", "Resume JOB."),
):
    _cmd = _job_action(_action)
    _cmd = connection_options(_cmd)
    if _action == "stop":
        _cmd = click.option("--force", is_flag=True, help="Skip the graceful drain.")(_cmd)
    _cmd = click.argument("job")(_cmd)
    _cmd = click.pass_context(_cmd)
    cli.command(_action, help=_help)(_cmd)


@cli.command("print")
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the earliest offset.")
@click.option("--limit", "print_limit", type=click.IntRange(min=1), default=None, help="Stop after N records.")
@connection_options
@click.pass_context
def print_cmd(ctx: click.Context, /, topic: str, from_beginning: bool, print_limit: int | None, **params: Any) -> int:
    """Print a topic's raw records as they arrive (Ctrl-C to stop)."""
    quoted = topic.replace("'", "''")
    sql = f"PRINT '{quoted}'" + (" FROM BEGINNING" if from_beginning else "")
    if print_limit:
        sql += f" LIMIT {print_limit}"
    with _admin(ctx, params) as (c, client):
        tty = sys.stdout.isatty()
        fmt = c.params.get("output") or ("table" if tty else "jsonl")
        settings = OutputSettings(fmt=fmt, stream_fmt=fmt, color=tty, interactive=tty, timing=tty)
        session = Session(client, settings)
        try:
            result = session.run_text(sql)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            return _reader_gone()
        if result.unreachable:
            return EXIT_UNREACHABLE
        if result.interrupted:
            return EXIT_OK if tty else EXIT_INTERRUPTED
        return EXIT_OK if result.ok else EXIT_FAILED


# --------------------------------------------------------------------------- entry


def _reader_gone() -> int:
    """``velo-cli -e "SELECT …" | head``: the reader left, which is a normal way to stop a stream.

    Exiting closes the HTTP stream, which releases the query on the server. stdout is pointed at
    /dev/null so the interpreter's final flush cannot raise a second time.
    """
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Console script ``velo-cli``."""
    try:
        code = cli.main(args=argv, prog_name="velo-cli", standalone_mode=False)
    except click.UsageError as exc:
        exc.show()
        code = EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        code = _reader_gone()
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
