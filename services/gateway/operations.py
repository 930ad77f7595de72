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
from typing import Any

from pydantic import BaseModel

from libs.common.models import api
from libs.common.models import auth as au
from libs.common.models.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
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


def _list(path: str, summary: str, data: type[BaseModel], query: type[LimitQuery], *errs: int, **kw: Any) -> Op:
    """A paged list (``GET``, data a list, ``meta.next_cursor``)."""
    return Op("get", path, summary, 200, data, errors(TOKEN, QUERY, *errs), query=query, many=True, page=True, **kw)


def _auth_list(path: str, summary: str, data: type[BaseModel]) -> Op:
    """A list auth serves: paged up to auth's own maximum, no meta on the last page."""
    page_max = au.CREDENTIALS_PAGE_MAX
    return _list(path, summary, data, PageQuery, *FORWARD, last_page_meta=False, page_max=page_max, forwarded=True)


def _get(path: str, summary: str, data: type[BaseModel], method: str = "get") -> Op:
    """One resource by its id (404 when it is not the caller's)."""
    return Op(method, path, summary, 200, data, errors(TOKEN, 404))


def _post(path: str, summary: str, data: type[BaseModel], body: type[BaseModel], *errs: int, **kw: Any) -> Op:
    """A ``POST`` (or ``method=``) with a JSON body and a bearer token, answered ``status=`` (200)."""
    method, status = kw.pop("method", "post"), kw.pop("status", 200)
    return Op(method, path, summary, status, data, errors(TOKEN, BODY, *errs), body=body, **kw)


def _public(path: str, summary: str, data: type[BaseModel] | None, *errs: int, **kw: Any) -> Op:
    """A ``GET`` anyone may call whose answer is not enveloped."""
    return Op("get", path, summary, 200, data, errs, public=True, envelope=False, **kw)


def _fwd(path: str, summary: str, data: type[BaseModel], *errs: int, **kw: Any) -> Op:
    """What auth serves, through the gateway: a ``POST`` (or ``method=``) answered ``status=`` (200), with a
    bearer token unless ``public``."""
    method, status = kw.pop("method", "post"), kw.pop("status", 200)
    token = () if kw.get("public") else TOKEN
    body = BODY if kw.get("body") else ()
    return Op(method, path, summary, status, data, errors(token, body, FORWARD, *errs), forwarded=True, **kw)


WF = "/api/workflows"
ONE = "/api/workflows/{id}"
DLQ = "/api/dlq"
ROTATE = "Rotate the webhook secret (the previous one stays valid 24 h); with a body, set the secret a sender gave you"
HOOK_ERRORS = (400, 401, 404, 408, 413, 429, 503)

GATEWAY_OPERATIONS: tuple[Op, ...] = (
    _post(WF, "Create a workflow (version 1)", api.WorkflowOut, WorkflowCreate, 403, status=201),
    _list(WF, "List workflows, oldest first", api.WorkflowOut, PageQuery),
    _get(ONE, "Get a workflow", api.WorkflowOut),
    _post(ONE, "Replace a workflow (a new version)", api.WorkflowOut, WorkflowCreate, 404, method="put"),
    _post(ONE, "Enable or disable a workflow", api.WorkflowOut, api.WorkflowPatch, 404, method="patch"),
    _get(ONE, "Delete a workflow", api.DeletedOut, "delete"),
    _list(
        f"{ONE}/versions",
        "Version history, oldest first",
        api.WorkflowVersionOut,
        VersionPageQuery,
        404,
        meta=api.VersionPageMeta,
    ),
    _post(
        f"{ONE}/rollback", "Make an old version current (as a new version)", api.WorkflowOut, api.RollbackRequest, 404
    ),
    _post(f"{ONE}/webhook-secret", ROTATE, api.SecretRotatedOut, api.SecretSetRequest, 404, 409, body_optional=True),
    _post(
        f"{ONE}/run",
        "Run now (a manual trigger, through the bus)",
        api.AcceptedEvent,
        api.RunRequest,
        404,
        409,
        status=202,
        headers=api.RunHeaders,
    ),
    _post(f"{WF}/dry-run", "Run an action for real and record nothing", api.DryRunResult, api.DryRunRequest, 429, 503),
    _list("/api/executions", "List executions, newest first", api.ExecutionOut, ExecutionQuery),
    _get("/api/executions/{id}", "Get an execution (its output masked)", api.ExecutionDetailOut),
    _list(DLQ, "List dead letters, newest first", api.DeadLetterOut, DeadLetterQuery),
    _post(
        f"{DLQ}/{{event_id}}/replay",
        "Replay a dead letter",
        api.ReplayAccepted,
        api.ReplayOptions,
        404,
        409,
        status=202,
        body_optional=True,
    ),
    _post(
        f"{DLQ}/replay",
        "Replay every dead letter a filter matches (a job)",
        api.ReplayJobOut,
        api.DlqReplayRequest,
        status=202,
    ),
    _get(f"{DLQ}/replay/{{job_id}}", "A bulk replay's progress", api.ReplayJobOut),
    Op(
        "post",
        "/hooks/{workflow_id}",
        "Webhook ingest (Standard Webhooks signature)",
        202,
        api.AcceptedEvent,
        HOOK_ERRORS,
        headers=api.WebhookHeaders,
        public=True,
        raw_body=True,
    ),
    _public("/openapi.json", "This document", None),
    _public("/health/live", "Liveness: the process and its event loop answer", api.LiveOut),
    _public(
        "/health/ready", "Readiness: dependencies usable and not draining", api.ReadyOut, 503, error_model=api.ReadyOut
    ),
)

AUTH_OPERATIONS: tuple[Op, ...] = (
    _fwd(
        "/api/auth/register",
        "Register: a new user in a new tenant",
        au.RegisteredOut,
        429,
        status=201,
        body=au.Registration,
        public=True,
    ),
    _fwd("/api/auth/login", "Log in: an access token", au.TokenOut, 401, 429, body=au.Login, public=True),
    _fwd("/api/auth/logout", "Log out: revoke this token", au.RevokedOut),
    _fwd("/api/auth/logout-all", "Revoke every token of the caller's user", au.RevokedOut),
    _fwd(
        "/api/credentials",
        "Store a credential (its secret never comes back)",
        au.CredentialOut,
        status=201,
        body=au.CredentialCreate,
    ),
    _auth_list("/api/credentials", "List credentials, oldest first", au.CredentialOut),
    _fwd("/api/credentials/{credential_id}", "Delete a credential", api.DeletedOut, 400, 404, method="delete"),
    _fwd("/api/keys", "Create an API key (the key is shown this once)", ApiKeyCreated, status=201, body=ApiKeyCreate),
    _auth_list("/api/keys", "List API keys, oldest first", ApiKeyOut),
    _fwd("/api/keys/{key_id}", "Revoke an API key", ApiKeyOut, 404, method="delete"),
    _fwd(
        "/.well-known/jwks.json", "Token verification keys (a JWKS)", au.Jwks, method="get", public=True, envelope=False
    ),
)

OPERATIONS = GATEWAY_OPERATIONS + AUTH_OPERATIONS
