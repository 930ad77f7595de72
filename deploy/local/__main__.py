"""``python -m deploy.local`` (``make up``): run the whole platform on this machine."""

from __future__ import annotations

from deploy.local.launcher import main

if __name__ == "__main__":
    raise SystemExit(main())
