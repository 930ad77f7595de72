"""Least privilege in Postgres: each service's role is refused what is not its business (real Postgres).

The database is the harness's, migrated as the owner ``ipaas``.  Rows a role must not see are
written first as the superuser (a user with a password hash, a credential, a workflow with a
webhook secret, an execution with output), so a refusal is a refusal of real data; each attack
is then made as the service's own role, as a compromised service would make it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from libs.common.db.migrate import MigrationRefused, apply_migrations
from libs.common.db.roles import OWNER, SERVICE_ROLES
from tests.helpers.factories import create_tenant, create_workflow, insert_execution
from tests.helpers.fakes import definition as webhook_definition

Refused = asyncpg.InsufficientPrivilegeError


async def refused(run: Callable[..., Awaitable[Any]], *statements: str, args: tuple[Any, ...] = ()) -> None:
    """Each statement, made with ``run`` (a role's connection's ``fetch`` or ``execute``), is refused."""
    for sql in statements:
        with pytest.raises(Refused):
            await run(sql, *args)


# role -> grants, as "table:PRIVILEGE" (every column) or "table(column):PRIVILEGE".  The table in
# docs/architecture.md says the same in words; a change to one is a change to both.
ROW = ("SELECT", "INSERT", "UPDATE", "DELETE")
EXPECTED: dict[str, set[str]] = {
    "ipaas_auth": {
        f"{t}:{p}" for t in ("tenants", "users", "credentials", "token_revocations", "api_keys") for p in ROW
    }
    | {
        "token_revocations_id_seq:USAGE",
        # rotate-keys re-wraps webhook secrets' data keys: the wrapping only, never the sealed secret.
        *(f"webhook_secrets({c}):SELECT" for c in ("id", "workflow_id", "tenant_id", "kek_id", "wrapped_dek")),
        "webhook_secrets(kek_id):UPDATE",
        "webhook_secrets(wrapped_dek):UPDATE",
    },
    "ipaas_gateway": {
        f"{t}:{p}"
        for t in ("workflows", "workflow_versions", "outbox", "webhook_secrets", "replay_jobs", "replay_job_items")
        for p in ROW
    }
    | {
        "outbox_id_seq:USAGE",
        "executions:SELECT",
        "dead_letters:SELECT",
        "execution_attempts:SELECT",
        "execution_steps:SELECT",
        "execution_steps:DELETE",  # a DLQ replay with from_start forgets the step checkpoints
        "executions(status):UPDATE",
        "executions(updated_at):UPDATE",
        "executions(attempts):UPDATE",
        "dead_letters(replayed_at):UPDATE",
        "api_keys(last_used_at):UPDATE",
        *(f"api_keys({c}):SELECT" for c in ("id", "tenant_id", "digest", "scopes", "revoked_at", "last_used_at")),
    },
    "ipaas_executor": {
        f"{t}:{p}" for t in ("executions", "dead_letters", "deferred_events", "execution_steps") for p in ROW
    }
    | {
        "workflow_versions:SELECT",
        "workflows(id):UPDATE",
        "execution_attempts:SELECT",
        "execution_attempts:INSERT",
        "execution_attempts:DELETE",
        "execution_attempts_id_seq:USAGE",
        *(f"workflows({c}):SELECT" for c in ("id", "tenant_id", "is_active", "deleted_at")),
    },
    "ipaas_scheduler": {f"scheduler_state:{p}" for p in ROW}
    | {
        "workflow_versions:SELECT",
        "workflows(schedule_error):UPDATE",
        "executions(event_id):SELECT",
        *(
            f"workflows({c}):SELECT"
            for c in ("id", "tenant_id", "current_version", "is_active", "deleted_at", "schedule_error", "updated_at")
        ),
        *(
            f"executions({c}):INSERT"
            for c in (
                "id",
                "event_id",
                "tenant_id",
                "workflow_id",
                "workflow_version",
                "trigger",
                "status",
                "attempts",
                "finished_at",
                "error",
                "scheduled_for",
            )
        ),
    },
}

GRANTS_SQL = """
SELECT a.grantee::regrole::text AS role, c.relname || ':' || a.privilege_type AS grant
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'public'::regnamespace AND a.grantee <> 0
UNION ALL
SELECT a.grantee::regrole::text, c.relname || '(' || att.attname || '):' || a.privilege_type
  FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid, aclexplode(att.attacl) a
 WHERE c.relnamespace = 'public'::regnamespace AND NOT att.attisdropped AND a.grantee <> 0
"""


async def _grants(db: asyncpg.Connection) -> dict[str, set[str]]:
    """Every role holding a privilege in the schema, and its grants (as in :data:`EXPECTED`)."""
    rows = await db.fetch(GRANTS_SQL)
    return {role: {r["grant"] for r in rows if r["role"] == role} for role in {r["role"] for r in rows}}


@dataclass
class Data:
    """Rows the attacks aim at, and a connection per role."""

    tenant_id: uuid.UUID
    workflow_id: uuid.UUID
    event_id: uuid.UUID
    conns: dict[str, asyncpg.Connection]

    def __getitem__(self, service: str) -> asyncpg.Connection:
        return self.conns[service]


@pytest.fixture
async def data(db: asyncpg.Connection, role_url: Callable[[str], str]) -> AsyncIterator[Data]:
    tenant_id = await create_tenant(db)
    await db.execute(
        "INSERT INTO users (id, tenant_id, email, password_hash) VALUES ($1, $2, $3, $4)",
        uuid.uuid4(),
        tenant_id,
        "victim@example.com",
        "$argon2id$v=19$m=65536,t=3,p=4$secret",
    )
    await db.execute(
        """INSERT INTO credentials (id, tenant_id, name, type, kek_id, wrapped_dek, ciphertext)
                        VALUES ($1, $2, 'slack', 'slack', 'k1', '\\x01', '\\x02')""",
        uuid.uuid4(),
        tenant_id,
    )
    definition = webhook_definition("http_request", {"method": "POST", "url": "https://x.invalid"})
    workflow_id = await create_workflow(db, tenant_id, definition, webhook_secret="whsec_c2VjcmV0")
    event_id = uuid.uuid4()
    await insert_execution(db, tenant_id, workflow_id, status="failed", output={"token": "t"}, event_id=event_id)
    conns = {s: await asyncpg.connect(role_url(s)) for s in SERVICE_ROLES}
    try:
        yield Data(tenant_id, workflow_id, event_id, conns)
    finally:
        for conn in conns.values():
            await conn.close()


async def test_each_role_holds_exactly_its_grants_and_the_owner_owns_every_table(db: asyncpg.Connection) -> None:
    granted = await _grants(db)
    for role, expected in EXPECTED.items():
        got = granted.get(role, set())
        assert got == expected, (role, sorted(got - expected), sorted(expected - got))
    # Nobody else holds anything: no grant to PUBLIC or to a role outside the table.
    assert set(granted) <= {*SERVICE_ROLES.values(), OWNER}
    assert (
        await db.fetchval("""SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a
                                 WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = 0""")
        == 0
    )
    owners = {
        r["tablename"]: r["tableowner"]
        for r in await db.fetch("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
    }
    assert set(owners) >= {
        "tenants",
        "users",
        "credentials",
        "workflows",
        "outbox",
        "executions",
        "deferred_events",
        "scheduler_state",
        "schema_migrations",
    }
    assert set(owners.values()) == {OWNER}  # the migrations ran as the owner
    assert (
        await db.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()") == OWNER
    )


async def test_the_gateway_cannot_read_credentials_or_password_hashes(data: Data) -> None:
    gateway = data["gateway"]
    await refused(
        gateway.fetch,
        "SELECT * FROM credentials",
        "SELECT ciphertext, wrapped_dek FROM credentials",
        "SELECT password_hash FROM users",
        "SELECT email FROM users",
        "SELECT * FROM tenants",
    )
    await refused(
        gateway.execute, "UPDATE users SET password_hash = 'mine' WHERE tenant_id = $1", args=(data.tenant_id,)
    )
    # What it needs, it has: its workflows (secrets included), and the tenant's executions.
    assert await gateway.fetchval("SELECT webhook_secret FROM workflows WHERE id = $1", data.workflow_id)
    assert await gateway.fetchval("SELECT output FROM executions WHERE event_id = $1", data.event_id)
    # A replay may make a run non-final; it may not fake its outcome or erase it.
    await refused(
        gateway.execute,
        "UPDATE executions SET output = '{}', error = NULL WHERE event_id = $1",
        "DELETE FROM executions WHERE event_id = $1",
        args=(data.event_id,),
    )


async def test_the_executor_cannot_read_users_credentials_or_webhook_secrets(
    data: Data, db: asyncpg.Connection
) -> None:
    executor = data["executor"]
    await refused(
        executor.fetch,
        "SELECT * FROM users",
        "SELECT id FROM users",
        "SELECT * FROM credentials",
        "SELECT webhook_secret, webhook_secret_prev FROM workflows",
        "SELECT * FROM workflows",
        "SELECT * FROM webhook_secrets",
        "SELECT * FROM outbox",
        "SELECT * FROM scheduler_state",
    )
    # It reads a workflow's owner and state, under the share lock its claim takes, and changes nothing.
    async with executor.transaction():
        row = await executor.fetchrow(
            "SELECT tenant_id, is_active FROM workflows WHERE id = $1 FOR SHARE", data.workflow_id
        )
    assert row is not None and row["tenant_id"] == data.tenant_id
    await refused(
        executor.execute,
        "UPDATE workflows SET is_active = false WHERE id = $1",
        "UPDATE workflows SET deleted_at = now() WHERE id = $1",
        "UPDATE workflow_versions SET definition = '{}' WHERE workflow_id = $1",
        args=(data.workflow_id,),
    )
    # The one column it may write for its lock cannot be changed: the workflow's versions refer to it.
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await executor.execute("UPDATE workflows SET id = gen_random_uuid() WHERE id = $1", data.workflow_id)
    # No forged change notices.
    await refused(executor.execute, "INSERT INTO outbox (subject, msg_id, payload) VALUES ('x', 'y', '{}')")
    assert await db.fetchval("SELECT is_active AND deleted_at IS NULL FROM workflows WHERE id = $1", data.workflow_id)


async def test_the_scheduler_may_record_skipped_slots_but_not_touch_runs(data: Data, db: asyncpg.Connection) -> None:
    scheduler = data["scheduler"]
    attacks = [
        "UPDATE executions SET status = 'succeeded' WHERE event_id = $1",
        "DELETE FROM executions WHERE event_id = $1",
        "SELECT output FROM executions WHERE event_id = $1",
        "SELECT status FROM executions WHERE event_id = $1",
        "DELETE FROM dead_letters WHERE event_id = $1",
        "SELECT * FROM deferred_events WHERE event_id = $1",
    ]
    await refused(scheduler.execute, *attacks, args=(data.event_id,))
    await refused(
        scheduler.execute,
        "SELECT webhook_secret FROM workflows",
        "SELECT * FROM users",
        "SELECT * FROM credentials",
        "SELECT * FROM webhook_secrets",
        "UPDATE workflows SET is_active = false",
        "UPDATE workflows SET current_version = 1",
        "INSERT INTO outbox (subject, msg_id, payload) VALUES ('x', 'y', '{}')",
    )
    assert await db.fetchval("SELECT status FROM executions WHERE event_id = $1", data.event_id) == "failed"


async def test_auth_cannot_read_workflows_or_runs(data: Data) -> None:
    auth = data["auth"]
    await refused(
        auth.fetch,
        "SELECT webhook_secret FROM workflows",
        "SELECT definition FROM workflow_versions",
        "SELECT output FROM executions",
        "SELECT * FROM dead_letters",
        "SELECT * FROM deferred_events",
        "SELECT * FROM outbox",
        "SELECT * FROM scheduler_state",
        "SELECT ciphertext FROM webhook_secrets",
        "DELETE FROM webhook_secrets",
        "UPDATE webhook_secrets SET valid_until = now()",
    )
    assert await auth.fetchval("SELECT count(*) FROM credentials WHERE tenant_id = $1", data.tenant_id) == 1
    # What rotate-keys needs of webhook secrets, it has: their wrapping, to re-wrap.
    assert await auth.fetchval("SELECT count(wrapped_dek) FROM webhook_secrets WHERE kek_id <> 'new'") == 0


OWN_TABLE = {"auth": "credentials", "gateway": "workflows", "executor": "executions", "scheduler": "scheduler_state"}


@pytest.mark.parametrize("service", list(SERVICE_ROLES))
async def test_a_service_role_can_run_no_ddl_grant_nothing_nor_migrate(
    data: Data, db: asyncpg.Connection, role_url: Callable[[str], str], service: str
) -> None:
    conn = data[service]
    table = OWN_TABLE[service]
    other = "ipaas_gateway" if service == "auth" else "ipaas_auth"
    ddl = [
        "CREATE TABLE public.stolen (x text)",
        "CREATE SCHEMA mine",
        "CREATE VIEW public.v AS SELECT 1 AS x",
        f"ALTER TABLE {table} ADD COLUMN x text",
        f"ALTER TABLE {table} DISABLE TRIGGER ALL",
        f"ALTER TABLE {table} OWNER TO {SERVICE_ROLES[service]}",
        f"DROP TABLE {table}",
        f"TRUNCATE {table}",
        f"CREATE INDEX ON {table} (updated_at)",
        "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        f"SET ROLE {OWNER}",
        f"SET ROLE {other}",
    ]
    await refused(conn.execute, *ddl)
    # Handing its table on to others does nothing: it holds no grant option.
    before = await _grants(db)
    await conn.execute(f"GRANT ALL ON {table} TO {OWNER}, {', '.join(SERVICE_ROLES.values())}")
    assert await _grants(db) == before
    # Migrating as a service role is refused before anything is applied.
    with pytest.raises(MigrationRefused, match="service role"):
        await apply_migrations(role_url(service))
