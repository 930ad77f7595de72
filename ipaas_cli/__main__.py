"""``python -m ipaas_cli``: the same as the ``ipaas`` command."""

from __future__ import annotations

from ipaas_cli.main import main

if __name__ == "__main__":
    main()
