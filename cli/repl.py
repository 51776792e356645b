"""The interactive shell: a prompt_toolkit session around :class:`velo.cli.session.Session`.

Enter submits when the buffer holds a complete statement (ends with ``;`` outside quotes/comments), a meta
command (``\\…``) or ``help``/``exit``/``quit``; otherwise it inserts a newline (Alt-Enter always does).
Highlighting comes from :mod:`velo.cli.lexer`, completion from :mod:`velo.cli.completion` (catalog
refreshed in the background at start, after DDL and on ``\\refresh``). History is persistent but never
stores a line containing the bearer token.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.filters import completion_is_selected, has_completions
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.output import Output
from velo.cli import render
from velo.cli.client import ServerUnreachable, TlsVerificationFailed, VeloClient, VeloError, host_port
from velo.cli.completion.catalog import Catalog
from velo.cli.completion.completer import VeloCompleter
from velo.cli.completion.refresh import CatalogRefresher
from velo.cli.config import Config, Connection, history_path, open_client, profile_ca_cert
from velo.cli.lexer import VeloLexer
from velo.cli.session import OutputSettings, Session, env_pager
from velo.cli.statements import is_complete

HELP = r"""Statements end with ';' (Alt-Enter for a newline anywhere). Ctrl-C cancels a running query or
clears the line; Ctrl-D quits. Tab completes; Ctrl-R searches history.

Meta commands:
  \?, help           this help
  \q, exit, quit     quit
  \c URL|PROFILE     connect to another server
  \i FILE            run the statements of FILE
  \o [FILE]          send results to FILE (no FILE: back to the terminal)
  \T FORMAT          output format: table vertical json jsonl csv tsv
  \x                 toggle vertical output
  \timing            toggle "N rows in X.Xs" after results
  \jobs [NAME]       list jobs, or show one job in full
  \refresh           reload completion names from the server
  \e [FILE]          edit the last statement (or FILE) in $EDITOR, then run it with Enter

Session properties: SET 'key' = 'value';  UNSET 'key';  (sent with every statement;
'cli.live' = 'true'|'false' switches the live table for EMIT CHANGES aggregates)."""

_EXIT_WORDS = {"exit", "quit", r"\q"}


def should_submit(text: str) -> bool:
    """The Enter rule (see the module docstring)."""
    stripped = text.strip()
    if not stripped:
        return True
    if stripped.startswith("\\"):
        return True
    if stripped.rstrip(";").strip().lower() in ("help", "exit", "quit"):
        return True
    return is_complete(text)


class SecretFilteringHistory(History):
    """Wraps a history and drops any entry containing a secret (the bearer token)."""

    def __init__(self, inner: History, secrets: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._inner = inner
        self._secrets = secrets

    def _leaks(self, string: str) -> bool:
        return any(s and s in string for s in self._secrets())

    def load_history_strings(self) -> Iterable[str]:
        return [s for s in self._inner.load_history_strings() if not self._leaks(s)]

    def store_string(self, string: str) -> None:
        if not self._leaks(string):
            self._inner.store_string(string)

    def append_string(self, string: str) -> None:
        if not self._leaks(string):
            super().append_string(string)


def make_history(path: Path | None) -> History:
    if path is None:
        return InMemoryHistory()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileHistory(str(path))
    except OSError:
        return InMemoryHistory()  # a read-only state dir must not stop the shell


class Repl:
    """The interactive shell."""

    def __init__(
        self,
        conn: Connection,
        config: Config | None = None,
        *,
        vi: bool | None = None,
        variables: dict[str, str] | None = None,
        input: Input | None = None,
        output: Output | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        history_file: Path | bool | None = True,
        client_factory: Callable[[Connection], VeloClient] = open_client,
        background_refresh: bool = True,
        color: bool | None = None,
    ) -> None:
        self.config = config or Config()
        self.conn = conn
        self._client_factory = client_factory
        self._startup_token = conn.token
        self._startup = conn
        self.client = client_factory(conn)
        tty = (out or sys.stdout).isatty()
        if color is None:
            color = tty and not os.environ.get("NO_COLOR")
        fmt = conn.output or self.config.text("output") or "table"
        self.settings = OutputSettings(
            fmt=fmt,
            stream_fmt=fmt,
            color=color,
            timing=self.config.flag("timing", True),
            live=self.config.flag("live", True) and tty,
            pager=env_pager(self.config.text("pager", "less -SRXF")) if tty else None,
            interactive=True,
        )
        self._terminal = out or sys.stdout
        self.session = Session(
            self.client,
            self.settings,
            out=self._terminal,
            console=self._terminal,
            err=err or (out if out is not None else sys.stderr),
            variables=variables,
            on_catalog_change=self.refresh_catalog,
        )
        self.completer = VeloCompleter()
        self.running_jobs: int | None = None
        self._background = background_refresh
        self.refresher = CatalogRefresher(self._new_client, self._on_catalog, self._on_health)
        self._previous_fmt = "table"
        self._next_default = ""
        self._last_sql = ""
        self._out_file: TextIO | None = None
        self.done = False

        if history_file is True:
            hist_path: Path | None = history_path()
        elif history_file is False or history_file is None:
            hist_path = None
        else:
            hist_path = history_file
        history = SecretFilteringHistory(make_history(hist_path), self._secrets)
        use_vi = vi if vi is not None else self.config.flag("vi", False)
        self.prompt = PromptSession[str](
            message=self._message,
            multiline=True,
            prompt_continuation=self._continuation,
            key_bindings=self._bindings(),
            lexer=PygmentsLexer(VeloLexer),
            completer=self.completer,
            complete_while_typing=True,
            auto_suggest=AutoSuggestFromHistory(),
            history=history,
            bottom_toolbar=self._toolbar,
            enable_open_in_editor=True,
            enable_history_search=False,  # Ctrl-R incremental search stays; Up walks history lines
            vi_mode=use_vi,
            input=input,
            output=output,
        )

    # ------------------------------------------------------------------ prompt pieces

    def _secrets(self) -> list[str]:
        return [t for t in (self._startup_token, self.conn.token) if t]

    def _message(self) -> str:
        return f"velo@{host_port(self.client.url)}> "

    def _continuation(self, width: int, line_number: int, is_soft_wrap: int) -> str:
        return "-> ".rjust(width)

    def _toolbar(self) -> str:
        state = {None: "connecting", True: "connected", False: "unreachable"}[self.session.connected]
        parts = [f" {self.client.url}", state]
        if self.running_jobs is not None:
            parts.append(f"{self.running_jobs} running")
        parts.append(f"output {self.settings.fmt}")
        if self._out_file is not None:
            parts.append(f"\\o {getattr(self._out_file, 'name', '?')}")
        props = self.session.properties
        if props:
            shown = ", ".join(f"{k}={v}" for k, v in list(props.items())[:3])
            more = f" +{len(props) - 3}" if len(props) > 3 else ""
            parts.append(f"SET {shown}{more}")
        rate = self.session.last_rows_per_s
        if rate is not None:
            parts.append(f"{rate:.1f} rows/s")
        parts.append(r"\? help")
        return " · ".join(parts)

    def _bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add("enter", filter=completion_is_selected)
        def _accept_completion(event: KeyPressEvent) -> None:
            # Enter on a highlighted completion takes it; it never submits a half-typed word.
            event.current_buffer.complete_state = None

        @kb.add("enter", filter=~completion_is_selected)
        def _enter(event: KeyPressEvent) -> None:
            buf = event.current_buffer
            if should_submit(buf.text):
                buf.validate_and_handle()
            else:
                buf.newline(copy_margin=False)

        @kb.add("escape", "enter")
        def _newline(event: KeyPressEvent) -> None:
            event.current_buffer.newline(copy_margin=False)

        @kb.add("c-space", filter=~has_completions)
        def _complete(event: KeyPressEvent) -> None:
            event.current_buffer.start_completion(select_first=False)

        return kb

    # ------------------------------------------------------------------ catalog

    def _new_client(self) -> VeloClient:
        return self._client_factory(self.conn)

    def _on_catalog(self, catalog: Catalog) -> None:
        self.completer.set_catalog(catalog)

    def _on_health(self, health: dict[str, Any] | None) -> None:
        if health is None:
            return
        jobs = health.get("jobs")
        if isinstance(jobs, dict) and isinstance(jobs.get("running"), int):
            self.running_jobs = jobs["running"]

    def refresh_catalog(self) -> None:
        if self._background:
            self.refresher.refresh()

    # ------------------------------------------------------------------ output

    def say(self, text: str) -> None:
        self._terminal.write(text + "\n")
        self._terminal.flush()

    def error(self, text: str) -> None:
        self.session.err.write(render.red(text, self.settings.color) + "\n")
        self.session.err.flush()

    # ------------------------------------------------------------------ main loop

    def greet(self) -> None:
        try:
            health = self.client.health()
        except TlsVerificationFailed as exc:
            # Retrying cannot help: the user has to say which CA to trust.
            self.session.connected = False
            self.error(f"ERROR {exc.message}")
            return
        except ServerUnreachable as exc:
            self.session.connected = False
            self.error(
                f"Server {self.client.url} is not reachable ({exc.reason}); the shell will retry on the next statement."
            )
            return
        except VeloError as exc:
            self.session.connected = True
            self.error(f"Server {self.client.url} answered /health with {exc}")
            return
        self.session.connected = True
        self._on_health(health)
        version = health.get("version", "?")
        status = health.get("status", "?")
        running = f", {self.running_jobs} jobs running" if self.running_jobs is not None else ""
        self.say(f"Connected to {self.client.url} (velo-server {version}, {status}{running}).")

    def run(self) -> int:
        self.say(r"velo-cli — type \? for help, Ctrl-D to quit.")
        self.greet()
        self.refresh_catalog()
        try:
            while not self.done:
                try:
                    text = self.prompt.prompt(default=self._next_default)
                except KeyboardInterrupt:
                    self._next_default = ""
                    continue  # Ctrl-C at the prompt clears the line; it never exits
                except EOFError:
                    break
                self._next_default = ""
                try:
                    self.handle(text)
                except KeyboardInterrupt:
                    # A Ctrl-C that lands between a statement's end and the next prompt, or in a meta
                    # command: never a reason to leave the shell.
                    self.error("cancelled")
        finally:
            self._close_out_file()
            self.client.close()
        return 0

    def handle(self, text: str) -> None:
        """Run one submitted buffer: a meta command, help/exit, or SQL."""
        stripped = text.strip()
        if not stripped:
            return
        word = stripped.rstrip(";").strip().lower()
        if word in _EXIT_WORDS:
            self.done = True
            return
        if word == "help":
            self.say(HELP)
            return
        if stripped.startswith("\\"):
            self.meta(stripped)
            return
        self._last_sql = text
        try:
            self.session.run_text(text, on_error="stop")
        except KeyboardInterrupt:
            # Ctrl-C outside a streaming query (e.g. waiting on a slow statement): back to the prompt,
            # with a fresh client — the interrupted request may have left its connection half-used.
            self.error("cancelled")
            old, self.client = self.client, self._client_factory(self.conn)
            self.session.client = self.client
            with contextlib.suppress(Exception):
                old.close()

    # ------------------------------------------------------------------ meta commands

    def meta(self, line: str) -> None:
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        handlers: dict[str, Callable[[str], None]] = {
            "\\?": lambda a: self.say(HELP),
            "\\h": lambda a: self.say(HELP),
            "\\q": self._quit,
            "\\c": self._connect,
            "\\connect": self._connect,
            "\\i": self._include,
            "\\o": self._output_file,
            "\\T": self._format,
            "\\x": self._toggle_vertical,
            "\\timing": self._timing,
            "\\jobs": self._jobs,
            "\\refresh": self._refresh,
            "\\e": self._edit,
        }
        handler = handlers.get(cmd)
        if handler is None:
            self.error(f"unknown command {cmd} (\\? lists them)")
            return
        handler(arg)

    def _quit(self, arg: str) -> None:
        self.done = True

    def _connect(self, arg: str) -> None:
        if not arg:
            self.say(f"connected to {self.client.url}" if self.session.connected else self.client.url)
            return
        if arg in self.config.profiles:
            prof = self.config.profiles[arg]
            url = str(prof.get("url") or "")
            if not url:
                self.error(f"profile {arg!r} has no url")
                return
            token = prof.get("token") if isinstance(prof.get("token"), str) else None
            # The profile's CA, else the one given at startup; --insecure holds for the whole run.
            ca_cert = profile_ca_cert(self.config, prof) or self._startup.ca_cert
            new = Connection(
                url, token or os.environ.get("VELO_TOKEN") or None, None, arg, ca_cert, self._startup.insecure
            )
        else:
            # A URL keeps the token and TLS settings given at startup (flags / environment / profile).
            new = replace(self._startup, url=arg, output=None, profile=None)
        old = self.client
        try:
            self.client = self._client_factory(new)
        except Exception as exc:  # a malformed URL: keep the old connection
            self.error(f"cannot use {arg!r}: {exc}")
            return
        old.close()
        self.conn = new
        self.session.client = self.client
        self.session.connected = None
        self.running_jobs = None
        self.completer.set_catalog(Catalog())
        self.greet()
        self.refresh_catalog()

    def _include(self, arg: str) -> None:
        if not arg:
            self.error(r"usage: \i FILE")
            return
        try:
            text = Path(arg).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            self.error(f"cannot read {arg}: {exc.strerror or exc}")
            return
        self.session.run_text(text, on_error="stop")

    def _close_out_file(self) -> None:
        if self._out_file is not None:
            with contextlib.suppress(OSError):
                self._out_file.close()
            self._out_file = None
        self.session.out = self._terminal

    def _output_file(self, arg: str) -> None:
        self._close_out_file()
        if not arg:
            self.say("results go to the terminal")
            return
        try:
            self._out_file = Path(arg).expanduser().open("w", encoding="utf-8")
        except OSError as exc:
            self.error(f"cannot open {arg}: {exc.strerror or exc}")
            return
        self.session.out = self._out_file
        self.say(f"results go to {arg}")

    def _format(self, arg: str) -> None:
        if arg not in render.FORMATS:
            self.say(f"output format: {self.settings.fmt} (one of {', '.join(render.FORMATS)})")
            return
        self.settings.fmt = self.settings.stream_fmt = arg
        self.say(f"output format is {arg}")

    def _toggle_vertical(self, arg: str) -> None:
        if self.settings.fmt == "vertical":
            self.settings.fmt = self.settings.stream_fmt = self._previous_fmt
        else:
            self._previous_fmt = self.settings.fmt
            self.settings.fmt = self.settings.stream_fmt = "vertical"
        self.say(f"output format is {self.settings.fmt}")

    def _timing(self, arg: str) -> None:
        self.settings.timing = not self.settings.timing
        self.say(f"timing is {'on' if self.settings.timing else 'off'}")

    def _jobs(self, arg: str) -> None:
        try:
            if arg:
                job = self.client.job(arg)
                cols, rows = render.job_detail(job)
                self.session.write_result(render.render(self.settings.fmt, cols, rows))
                hcols, hrows = render.job_history(job)
                if hrows:
                    self.session.write_result(render.render(self.settings.fmt, hcols, hrows))
            else:
                jobs = self.client.jobs()
                rows = [render.job_row(j) for j in jobs]
                self.session.write_result(render.render(self.settings.fmt, render.JOB_COLUMNS, rows))
            self.session.connected = True
        except ServerUnreachable as exc:
            self.session.connected = False
            self.error(f"ERROR {exc.message}")
        except VeloError as exc:
            self.error(render.format_error(exc))

    def _refresh(self, arg: str) -> None:
        self.refresh_catalog()
        self.say("refreshing completions in the background")

    def _edit(self, arg: str) -> None:
        import click  # only needed here: click.edit runs $EDITOR/$VISUAL portably

        try:
            if arg:
                path = Path(arg).expanduser()
                click.edit(filename=str(path))
                edited: str | None = path.read_text(encoding="utf-8")
            else:
                edited = click.edit(self._last_sql, extension=".sql", require_save=True)
        except (click.ClickException, OSError) as exc:
            self.error(f"editor failed: {exc}")
            return
        if edited is not None:
            # The edited text comes back in the prompt; Enter runs it.
            self._next_default = edited.rstrip("\n")
