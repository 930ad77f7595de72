"""Every operation the gateway serves, as one table: the source of ``/openapi.json``.

Each row names the models that validate the request (body, query, headers)
and build the answer, and the statuses the operation can answer, so the
document is generated from the code's own models (:mod:`services.gateway.openapi`).
A unit test compares the table with the gateway's router, and its forwarded
rows with auth's router: an operation cannot be served without being listed,
or listed without being served.

Error statuses, by where they come from:

- a bearer token (``/api/*`` except register and login): 401, and 503 when
  revocations cannot be checked or a dependency (Postgres, NATS, auth) is away;
- a JSON body: 400 (malformed, empty, not UTF-8), 408 (too slow), 413 (too
  large), 415 (not JSON), 422 (invalid, naming each field);
- query parameters: 422, naming each one;
- an id in the path: 404 (missing, another tenant's, or not a UUID);
- forwarding to auth: whatever body comes is read first (408, 413), and
  auth unreachable or slow is a 503.

405 (with ``Allow``) answers a method an operation's path does not list; it
cannot happen to a listed operation, so no operation documents it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from libs.common.models import api
from libs.common.models import api_keys as key_models
from libs.common.models import auth as auth_models
from libs.common.models.queries import DeadLetterQuery, ExecutionQuery, LimitQuery, PageQuery, VersionPageQuery
from libs.common.models.workflows import WorkflowCreate

TOKEN = (401, 403, 503)  # 403: an API key without the operation's scope
BODY = (400, 408, 413, 415, 422)
QUERY = (422,)
FORWARD = (408, 413, 503)  # any body is read (size and time bounded) before auth is asked; auth away


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    status: int
    data: type[BaseModel] | None
    errors: tuple[int, ...]
    body: type[BaseModel] | None = None
    query: type[LimitQuery] | None = None
    headers: type[BaseModel] | None = None
    many: bool = False  # data is a list
    page: bool = False  # ... with meta.next_cursor
    last_page_meta: bool = True  # the last page has meta (next_cursor null), or none
    meta: type[BaseModel] = api.PageMeta  # the page's meta (its cursor's shape)
    page_max: int | None = None  # the largest limit, when not the gateway's IPAAS_GATEWAY_PAGE_MAX
    public: bool = False
    envelope: bool = True
    error_model: type[BaseModel] = api.ErrorEnvelope
    forwarded: bool = False  # served by auth, through the gateway
    raw_body: bool = False  # any body, any content type (webhooks)
    body_optional: bool = False  # ``body`` may be left out


def errors(*groups: tuple[int, ...] | int) -> tuple[int, ...]:
    found: set[int] = set()
    for group in groups:
        found.update((group,) if isinstance(group, int) else group)
    return tuple(sorted(found))


def _auth_list(path: str, summary: str, data: type[BaseModel]) -> Op:
    """A list auth serves: paged up to auth's own maximum, no meta on the last page."""
    return Op(
        "get",
        path,
        summary,
        200,
        data,
        errors(TOKEN, QUERY, FORWARD),
        query=PageQuery,
        many=True,
        page=True,
        last_page_meta=False,
        page_max=auth_models.CREDENTIALS_PAGE_MAX,
        forwarded=True,
    )


WF = "/api/workflows"
ONE = "/api/workflows/{id}"

GATEWAY_OPERATIONS: tuple[Op, ...] = (
    Op(
        "post", WF, "Create a workflow (version 1)", 201, api.WorkflowOut, errors(TOKEN, BODY, 403), body=WorkflowCreate
    ),
    Op(
        "get",
        WF,
        "List workflows, oldest first",
        200,
        api.WorkflowOut,
        errors(TOKEN, QUERY),
        query=PageQuery,
        many=True,
        page=True,
    ),
    Op("get", ONE, "Get a workflow", 200, api.WorkflowOut, errors(TOKEN, 404)),
    Op(
        "put",
        ONE,
        "Replace a workflow (a new version)",
        200,
        api.WorkflowOut,
        errors(TOKEN, BODY, 404),
        body=WorkflowCreate,
    ),
    Op(
        "patch",
        ONE,
        "Enable or disable a workflow",
        200,
        api.WorkflowOut,
        errors(TOKEN, BODY, 404),
        body=api.WorkflowPatch,
    ),
    Op("delete", ONE, "Delete a workflow", 200, api.DeletedOut, errors(TOKEN, 404)),
    Op(
        "get",
        f"{ONE}/versions",
        "Version history, oldest first",
        200,
        api.WorkflowVersionOut,
        errors(TOKEN, QUERY, 404),
        query=VersionPageQuery,
        many=True,
        page=True,
        meta=api.VersionPageMeta,
    ),
    Op(
        "post",
        f"{ONE}/rollback",
        "Make an old version current (as a new version)",
        200,
        api.WorkflowOut,
        errors(TOKEN, BODY, 404),
        body=api.RollbackRequest,
    ),
    Op(
        "post",
        f"{ONE}/webhook-secret",
        "Rotate the webhook secret (the previous one stays valid 24 h); with a body, set the secret a sender gave you",
        200,
        api.SecretRotatedOut,
        errors(TOKEN, BODY, 404, 409),
        body=api.SecretSetRequest,
        body_optional=True,
    ),
    Op(
        "post",
        f"{ONE}/run",
        "Run now (a manual trigger, through the bus)",
        202,
        api.AcceptedEvent,
        errors(TOKEN, BODY, 404, 409),
        body=api.RunRequest,
        headers=api.RunHeaders,
    ),
    Op(
        "post",
        f"{WF}/dry-run",
        "Run an action for real and record nothing",
        200,
        api.DryRunResult,
        errors(TOKEN, BODY, 429, 503),
        body=api.DryRunRequest,
    ),
    Op(
        "get",
        "/api/executions",
        "List executions, newest first",
        200,
        api.ExecutionOut,
        errors(TOKEN, QUERY),
        query=ExecutionQuery,
        many=True,
        page=True,
    ),
    Op(
        "get",
        "/api/executions/{id}",
        "Get an execution (its output masked)",
        200,
        api.ExecutionDetailOut,
        errors(TOKEN, 404),
    ),
    Op(
        "get",
        "/api/dlq",
        "List dead letters, newest first",
        200,
        api.DeadLetterOut,
        errors(TOKEN, QUERY),
        query=DeadLetterQuery,
        many=True,
        page=True,
    ),
    Op(
        "post",
        "/api/dlq/{event_id}/replay",
        "Replay a dead letter",
        202,
        api.ReplayAccepted,
        errors(TOKEN, BODY, 404, 409),
        body=api.ReplayOptions,
        body_optional=True,
    ),
    Op(
        "post",
        "/api/dlq/replay",
        "Replay every dead letter a filter matches (a job)",
        202,
        api.ReplayJobOut,
        errors(TOKEN, BODY),
        body=api.DlqReplayRequest,
    ),
    Op("get", "/api/dlq/replay/{job_id}", "A bulk replay's progress", 200, api.ReplayJobOut, errors(TOKEN, 404)),
    Op(
        "post",
        "/hooks/{workflow_id}",
        "Webhook ingest (Standard Webhooks signature)",
        202,
        api.AcceptedEvent,
        (400, 401, 404, 408, 413, 429, 503),
        headers=api.WebhookHeaders,
        public=True,
        raw_body=True,
    ),
    Op("get", "/openapi.json", "This document", 200, None, (), public=True, envelope=False),
    Op(
        "get",
        "/health/live",
        "Liveness: the process and its event loop answer",
        200,
        api.LiveOut,
        (),
        public=True,
        envelope=False,
    ),
    Op(
        "get",
        "/health/ready",
        "Readiness: dependencies usable and not draining",
        200,
        api.ReadyOut,
        (503,),
        public=True,
        envelope=False,
        error_model=api.ReadyOut,
    ),
)

AUTH_OPERATIONS: tuple[Op, ...] = (
    Op(
        "post",
        "/api/auth/register",
        "Register: a new user in a new tenant",
        201,
        auth_models.RegisteredOut,
        errors(BODY, FORWARD, 429),
        body=auth_models.Registration,
        public=True,
        forwarded=True,
    ),
    Op(
        "post",
        "/api/auth/login",
        "Log in: an access token",
        200,
        auth_models.TokenOut,
        errors(BODY, FORWARD, 401, 429),
        body=auth_models.Login,
        public=True,
        forwarded=True,
    ),
    Op(
        "post",
        "/api/auth/logout",
        "Log out: revoke this token",
        200,
        auth_models.RevokedOut,
        errors(TOKEN, FORWARD),
        forwarded=True,
    ),
    Op(
        "post",
        "/api/auth/logout-all",
        "Revoke every token of the caller's user",
        200,
        auth_models.RevokedOut,
        errors(TOKEN, FORWARD),
        forwarded=True,
    ),
    Op(
        "post",
        "/api/credentials",
        "Store a credential (its secret never comes back)",
        201,
        auth_models.CredentialOut,
        errors(TOKEN, BODY, FORWARD),
        body=auth_models.CredentialCreate,
        forwarded=True,
    ),
    _auth_list("/api/credentials", "List credentials, oldest first", auth_models.CredentialOut),
    Op(
        "delete",
        "/api/credentials/{credential_id}",
        "Delete a credential",
        200,
        api.DeletedOut,
        errors(TOKEN, FORWARD, 400, 404),
        forwarded=True,
    ),
    Op(
        "post",
        "/api/keys",
        "Create an API key (the key is shown this once)",
        201,
        key_models.ApiKeyCreated,
        errors(TOKEN, BODY, FORWARD),
        body=key_models.ApiKeyCreate,
        forwarded=True,
    ),
    _auth_list("/api/keys", "List API keys, oldest first", key_models.ApiKeyOut),
    Op(
        "delete",
        "/api/keys/{key_id}",
        "Revoke an API key",
        200,
        key_models.ApiKeyOut,
        errors(TOKEN, FORWARD, 404),
        forwarded=True,
    ),
    Op(
        "get",
        "/.well-known/jwks.json",
        "Token verification keys (a JWKS)",
        200,
        auth_models.Jwks,
        FORWARD,
        public=True,
        envelope=False,
        forwarded=True,
    ),
)

OPERATIONS = GATEWAY_OPERATIONS + AUTH_OPERATIONS
