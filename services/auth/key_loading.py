"""Load the signing keys and the KEK ring from settings, off the event loop."""

from __future__ import annotations

import asyncio

from libs.common.keyring import load_keks
from services.auth.settings import AuthSettings
from services.auth.signing_keys import SigningKeyRing, load_signing_keys
from services.auth.vault import KekRing


def load_keys_sync(settings: AuthSettings) -> tuple[SigningKeyRing, KekRing]:
    ring = load_signing_keys(
        env_pem=settings.signing_key,
        keys_dir=settings.signing_keys_dir,
        dev_mode=settings.dev_mode,
        dev_dir=settings.dev_keys_dir,
    )
    return ring, kek_ring(settings)


def kek_ring(settings: AuthSettings) -> KekRing:
    """The vault's KEKs, first the one that seals.  Blocking (file I/O)."""
    return KekRing(
        load_keks(
            env_spec=settings.keks,
            keys_dir=settings.keks_dir,
            dev_mode=settings.dev_mode,
            dev_dir=settings.dev_keys_dir,
        )
    )


async def load_keys(settings: AuthSettings) -> tuple[SigningKeyRing, KekRing]:
    return await asyncio.to_thread(load_keys_sync, settings)
