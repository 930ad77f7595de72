"""Revoked tokens: what logout writes, what auth checks, and the feed verifiers poll.

Two kinds of rows in ``token_revocations`` (migration ``0101``):

- one token (``POST /api/auth/logout``): its ``jti``, kept until the token's
  own ``exp`` (plus leeway) has passed;
- every token of a user (``POST /api/auth/logout-all``): ``not_before``, the
  first whole second after the call; the user's tokens with ``iat`` before it
  are refused.  Kept for one token lifetime (plus leeway), after which no
  token issued before it is valid anyway.  A login in the same second gets
  ``iat = not_before``, so a fresh token is never caught by the revocation it
  follows.

Auth's own protected routes check the table on every request (they need
Postgres anyway), so for them a revocation holds at once.  Verifiers
elsewhere (the gateway) poll ``GET /internal/token-revocations?after=<cursor>``
(:func:`feed`).  The cursor is the ``xmin`` of the snapshot the previous
answer was read in: every transaction with an id below it had ended, so a row
that was not visible then has ``txid >= cursor`` and comes in the next
answer.  Answers may repeat a row; applying one twice changes nothing.
Expired rows are pruned by every replica (:func:`prune`).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

import asyncpg

from libs.common.auth.jwt_verify import Claims

_FEED_SQL = """
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS cursor,
       coalesce((SELECT json_agg(json_build_array(jti, extract(epoch FROM expires_at)::bigint))
                 FROM token_revocations
                 WHERE jti IS NOT NULL AND txid >= $1 AND expires_at > now()), '[]') AS tokens,
       coalesce((SELECT json_agg(json_build_array(user_id, not_before, extract(epoch FROM expires_at)::bigint))
                 FROM token_revocations
                 WHERE not_before IS NOT NULL AND txid >= $1 AND expires_at > now()), '[]') AS users
"""


async def revoke_token(pool: asyncpg.Pool, claims: Claims, *, leeway: float) -> None:
    """Refuse this one token from now on (until it would have expired anyway)."""
    await pool.execute(
        """INSERT INTO token_revocations (user_id, jti, expires_at)
           VALUES ($1, $2, to_timestamp($3)) ON CONFLICT (jti) DO NOTHING""",
        claims.user_id,
        claims.jti,
        claims.expires_at + math.ceil(leeway),
    )


async def revoke_all(pool: asyncpg.Pool, user_id: uuid.UUID, *, ttl_seconds: int, leeway: float) -> int:
    """Refuse every token of ``user_id`` issued until now; returns the ``not_before`` it set."""
    not_before = math.floor(time.time()) + 1
    await pool.execute(
        """INSERT INTO token_revocations (user_id, not_before, expires_at)
           VALUES ($1, $2, to_timestamp($3))""",
        user_id,
        not_before,
        not_before + ttl_seconds + math.ceil(leeway),
    )
    return not_before


async def is_revoked(pool: asyncpg.Pool, claims: Claims) -> bool:
    """Whether a token (already verified otherwise) was revoked, by itself or with all its user's."""
    return bool(
        await pool.fetchval(
            """SELECT EXISTS (SELECT 1 FROM token_revocations WHERE jti = $1)
               OR EXISTS (SELECT 1 FROM token_revocations
                          WHERE user_id = $2 AND not_before > $3 AND expires_at > now())""",
            claims.jti,
            claims.user_id,
            claims.issued_at,
        )
    )


async def feed(pool: asyncpg.Pool, after: int) -> dict[str, Any]:
    """The revocations written since ``after`` (a cursor from an earlier answer; 0: all), still in force.

    ``{"cursor": int, "tokens": [[jti, until], ...], "users": [[user_id, not_before, until], ...]}``,
    times in Unix seconds.
    """
    row = await pool.fetchrow(_FEED_SQL, after)
    return {"cursor": row["cursor"], "tokens": _json(row["tokens"]), "users": _json(row["users"])}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def prune(pool: asyncpg.Pool) -> int:
    """Delete rows that no longer refuse any valid token; returns how many."""
    result = await pool.execute("DELETE FROM token_revocations WHERE expires_at < now() - interval '1 minute'")
    return int(result.split()[-1])
