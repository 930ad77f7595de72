"""``ipaas keys rotate`` (operators): re-wrap every credential data key under the primary KEK.

The auth service does not expose key rotation over HTTP: it is the command
``python -m services.auth rotate-keys`` (docs/auth.md), run where the auth
service's configuration is (``DATABASE_URL``, the KEK settings).  This command
runs it there, with the same environment, and exits with its status: 0 when
nothing is left under an old KEK, 1 when some rows could not be unwrapped,
2 on bad configuration.  Signing-key rotation is configuration
(docs/auth.md, "Signing keys and rotation"), not a command.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import typer

from ipaas_cli.errors import UsageError
from ipaas_cli.output import guarded

app = typer.Typer(
    help="Operators: encryption-key rotation (runs where the auth service is configured).", no_args_is_help=True
)


@app.command("rotate")
def rotate() -> None:
    """Re-wrap credential data keys under the primary KEK (python -m services.auth rotate-keys)."""
    with guarded(False):
        try:
            found = importlib.util.find_spec("services.auth") is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise UsageError(
                "key rotation is not exposed over HTTP: run this where the ipaas services are "
                "installed and configured (python -m services.auth rotate-keys)"
            )
        result = subprocess.run([sys.executable, "-m", "services.auth", "rotate-keys"], check=False)
        raise typer.Exit(result.returncode)
