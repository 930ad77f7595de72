"""The save-time check: do the templates of an action config compile?

Uses the executor's environment and ``compile_checked``, so a config that
passes here compiles there, with the same static bounds. Besides the bounds of
each template, the templates of one config may hold ``MAX_CONFIG_TOKENS``
tokens together: that bounds the work of one check (and of the executor's
first render of the config). Only strings with Jinja markup are templates.
"""

from __future__ import annotations

from typing import Any

from libs.common.templates.engine import Path, walk_strings
from libs.common.templates.errors import TemplateInvalid
from libs.common.templates.fastpath import is_template
from libs.common.templates.limits import MAX_CONFIG_TOKENS
from libs.common.templates.sandbox import shared_environment


def template_problems(config: Any) -> list[tuple[Path, str]]:
    """``(path in the config, reason)`` for every template that does not compile; empty if all do."""
    environment = shared_environment()
    problems: list[tuple[Path, str]] = []
    tokens = 0
    try:
        for path, source in walk_strings(config):
            if not is_template(source):
                continue
            if tokens > MAX_CONFIG_TOKENS:
                break
            try:
                tokens += environment.compile_checked(source).tokens
            except TemplateInvalid as exc:
                tokens += exc.tokens
                problems.append((path, exc.message))
    except TemplateInvalid as exc:
        problems.append((exc.path, exc.message))
    if tokens > MAX_CONFIG_TOKENS:
        problems.append(((), f"the templates of this config have more than {MAX_CONFIG_TOKENS} tokens together"))
    return problems
