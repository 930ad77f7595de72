"""The gateway's keyring, re-read from ``IPAAS_AUTH_KEKS_DIR`` as auth re-reads it.

:class:`libs.common.keyring.KeyHolder` is what the app keeps (``app[KEKS]``): the look-up and the
workflow writes read ``holder.ring`` when they need it, so a reload takes effect
at once.  Putting a new KEK into the directory (first by name) makes it the one
that seals new webhook secrets within ``IPAAS_AUTH_KEYS_RELOAD_SECONDS``; the
ones already stored keep opening as long as their KEK stays in the directory.
"""

from __future__ import annotations

import logging

from libs.common.keyring import KeyHolder, KeyRing
from services.gateway.hooks.secret_store import load_ring
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


async def reload_keys(settings: GatewaySettings, holder: KeyHolder[KeyRing]) -> None:
    """Read the keyring again and swap it in (run every ``keys_reload_seconds``; a failure keeps the current one)."""
    ring = await load_ring(settings)
    if ring.kids != holder.ring.kids:
        log.info("keys reloaded", extra={"kek_ids": ring.kids, "primary_kek": ring.primary_id})
    holder.ring = ring
