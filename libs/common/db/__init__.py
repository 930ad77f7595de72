"""Postgres access: an asyncpg pool and the migration runner."""

from libs.common.db.migrate import apply_migrations
from libs.common.db.pool import create_pool

__all__ = ["apply_migrations", "create_pool"]
