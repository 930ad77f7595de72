"""Which steps a config's templates read: ``steps.<id>`` and ``steps["<id>"]``.

Used by the save-time check of multi-step workflows (a step reads only earlier
steps). Templates are parsed with the shared bounded environment; one that does
not parse is left to ``template_problems``, which reports it. A step named
through a variable (``steps[name]``) cannot be checked here; at run time an
unknown one is an undefined variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jinja2 import nodes

from libs.common.templates.engine import Path, walk_strings
from libs.common.templates.errors import TemplateInvalid
from libs.common.templates.fastpath import is_template
from libs.common.templates.sandbox import shared_environment

STEPS_NAME = "steps"


def step_references(config: Any) -> Iterator[tuple[Path, str]]:
    """``(path in the config, step id)`` for each step a template of ``config`` names, once per template."""
    environment = shared_environment()
    try:
        strings = list(walk_strings(config))
    except TemplateInvalid:
        return
    for path, source in strings:
        if not is_template(source) or STEPS_NAME not in source:
            continue
        try:
            tree = environment.parse(source)
        except Exception:  # noqa: BLE001, S112 - does not compile: reported by template_problems
            continue
        for name in sorted(set(_names(tree))):
            yield path, name


def _names(tree: nodes.Node) -> Iterator[str]:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr) and _is_steps(node.node):
            yield node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and _is_steps(node.node)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            yield node.arg.value


def _is_steps(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == STEPS_NAME
