"""What a command prints: JSON for scripts (``--json``), rich tables and text for people.

With ``--json`` stdout holds exactly one JSON document (an error too:
``{"error": {...}}``) and nothing else; notes and progress go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ipaas_cli.errors import CliError


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.out = Console(soft_wrap=True, highlight=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def result(self, data: Any, human: Callable[[Console], None] | None = None) -> None:
        """The command's answer: ``data`` as JSON, or ``human`` (default: the JSON, indented)."""
        if self.as_json:
            sys.stdout.write(dumps(data) + "\n")
            sys.stdout.flush()
        elif human is not None:
            human(self.out)
        else:
            self.out.print(escape(dumps(data)))

    def table(
        self,
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str],
        *,
        empty: str = "nothing to show",
        data: Any = None,
    ) -> None:
        def render(console: Console) -> None:
            if not rows:
                console.print(escape(empty))
                return
            table = Table(show_lines=False)
            for col in columns:
                table.add_column(col, overflow="fold")
            for row in rows:
                table.add_row(*(escape(cell(row.get(col))) for col in columns))
            console.print(table)

        self.result(list(rows) if data is None else data, render)

    def line(self, data: Any, text: str) -> None:
        """One streamed item (``executions tail``): a JSON line, or a line of text."""
        if self.as_json:
            sys.stdout.write(json.dumps(data, sort_keys=True, default=str) + "\n")
            sys.stdout.flush()
        else:
            self.out.print(escape(text))

    def note(self, text: str) -> None:
        self.err.print(escape(text))

    def error(self, exc: CliError) -> None:
        if self.as_json:
            sys.stdout.write(dumps(exc.as_json()) + "\n")
            sys.stdout.flush()
        self.err.print(f"[bold red]error:[/] {escape(exc.message)}")


@contextmanager
def guarded(as_json: bool) -> Iterator[Output]:
    """A command's output (JSON or for people); a :class:`CliError` becomes its message and exit code."""
    out = Output(as_json)
    try:
        yield out
    except CliError as exc:
        out.error(exc)
        raise typer.Exit(exc.exit_code) from exc
