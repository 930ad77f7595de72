"""Run schemathesis (its engine: the phases and checks of ``schemathesis run``) and collect what it found.

:func:`run_fuzz` is blocking (schemathesis sends its requests with
``requests``): call it from a thread while the servers run on the test's
event loop.  It returns a :class:`FuzzReport` with every failed check, every
engine error, and the statuses each operation answered, so a test can assert
on all three and print the failures in full.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.engine import events, from_schema
from schemathesis.specs.openapi.schemas import OpenApiSchema


@dataclass
class FuzzReport:
    findings: list[str] = field(default_factory=list)  # one failed check each, with its request and answer
    errors: list[str] = field(default_factory=list)
    statuses: dict[str, collections.Counter[int]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    phases: collections.Counter[str] = field(default_factory=collections.Counter)

    def summary(self, limit: int = 40) -> str:
        unique = sorted(set(self.findings))
        requests = sum(sum(counter.values()) for counter in self.statuses.values())
        lines = [
            f"{len(self.findings)} findings ({len(unique)} distinct), {len(self.errors)} errors, "
            f"{requests} requests ({dict(self.phases)})",
            *self.errors[:limit],
            *unique[:limit],
        ]
        return "\n".join(lines)


def load(
    document: dict[str, Any], config: dict[str, Any], setup: Callable[[OpenApiSchema], None] | None = None
) -> OpenApiSchema:
    """The document as a schemathesis schema, with ``config`` (the keys of ``schemathesis.toml``)."""
    schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_dict(config))
    if setup is not None:
        setup(schema)  # auth providers, hooks
    return schema


def run_fuzz(schema: OpenApiSchema) -> FuzzReport:
    report = FuzzReport()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(report, event)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"error in {event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}")
    return report


def _record(report: FuzzReport, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    for case_id, interaction in recorder.interactions.items():
        node = recorder.cases.get(case_id)
        label = node.value.operation.label if node is not None else event.label or "?"
        report.phases[event.phase.value] += 1
        if interaction.response is not None:
            report.statuses[label][interaction.response.status_code] += 1
        else:
            report.errors.append(f"no response: {label} {interaction.request.method} {interaction.request.uri}")
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            found = recorder.interactions.get(case_id)
            response = found.response if found is not None else None
            request = ""
            if found is not None:
                request = f"{found.request.method} {found.request.uri} {(found.request.body or b'')[:200]!r}"
                if response is not None:
                    request += f" -> {response.content[:300]!r}"
            operation = failure.operation or event.label or "?"
            status = response.status_code if response is not None else None
            message = failure.message.strip().replace("\n", " | ")[:600]
            report.findings.append(
                f"{operation} [{check.name}] {failure.title} (status {status})\n  {message}\n  {request}"
            )
