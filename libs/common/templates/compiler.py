"""Parsing and code generation with static bounds and budget hooks.

``BoundedParser`` counts tokens (at most ``MAX_TOKENS``, counted while lexing,
so an oversized source stops early) and nesting (at most ``MAX_NESTING``
active recursive rules), so parsing never approaches Python's recursion limit
and the verdict does not depend on the caller's stack depth. ``prepare_tree``
refuses trees deeper than ``MAX_AST_DEPTH`` (code generation recurses per
level) and templates that would load other templates, then wraps:

- the iterable of every ``for`` loop in ``environment.loop_iter`` (one budget
  step per iteration),
- every list, tuple and dict literal in ``environment.checked_value`` (size bound).

Jinja2 does not allow new node types, so a wrapped node carries the names of
its hooks in the ``HOOK`` attribute and ``BoundedCodeGenerator.visit`` emits
the calls around it. The generator also joins ``~`` with a size check, and
never evaluates expressions at compile time: the optimizer is off and only
literal template text is folded, so compiling runs no template code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Environment
from jinja2.exceptions import TemplateSyntaxError
from jinja2.lexer import Token, TokenStream
from jinja2.parser import Parser

from libs.common.templates.limits import MAX_AST_DEPTH, MAX_NESTING, MAX_TOKENS

_LOADERS = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
HOOK = "bounded_hook"


class BoundedParser(Parser):
    def __init__(self, environment: Environment, source: str) -> None:
        super().__init__(environment, source)
        self.tokens = 0
        self.nesting = 0
        self.stream = TokenStream(self._counted(self.stream), None, None)

    def _counted(self, stream: TokenStream) -> Iterator[Token]:
        for token in stream:
            self.tokens += 1
            if self.tokens > MAX_TOKENS:
                raise TemplateSyntaxError(f"template has more than {MAX_TOKENS} tokens", token.lineno)
            yield token

    def _nested(self, rule: Callable[..., Any], *args: Any) -> Any:
        self.nesting += 1
        try:
            if self.nesting > MAX_NESTING:
                self.fail("template nests too deeply")
            return rule(*args)
        finally:
            self.nesting -= 1

    def parse_statement(self) -> nodes.Node | list[nodes.Node]:
        return self._nested(super().parse_statement)  # type: ignore[no-any-return]

    def parse_expression(self, with_condexpr: bool = True) -> nodes.Expr:
        return self._nested(super().parse_expression, with_condexpr)  # type: ignore[no-any-return]

    def parse_condexpr(self) -> nodes.Expr:
        return self._nested(super().parse_condexpr)  # type: ignore[no-any-return]

    def parse_not(self) -> nodes.Expr:
        return self._nested(super().parse_not)  # type: ignore[no-any-return]

    def parse_unary(self, with_filter: bool = True) -> nodes.Expr:
        return self._nested(super().parse_unary, with_filter)  # type: ignore[no-any-return]


def prepare_tree(tree: nodes.Template) -> None:
    """Check depth and loaders, and mark the nodes that get a hook (iteratively: no recursion)."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            raise TemplateSyntaxError("template nests too deeply", node.lineno)
        if isinstance(node, _LOADERS):
            raise TemplateSyntaxError("templates cannot extend, include or import other templates", node.lineno)
        if isinstance(node, nodes.For):
            _hook(node.iter, "loop_iter")
        elif isinstance(node, nodes.List | nodes.Dict) or (isinstance(node, nodes.Tuple) and node.ctx == "load"):
            _hook(node, "checked_value")
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())


def _hook(node: nodes.Node, name: str) -> None:
    """Add a hook; the first one added is the outermost call."""
    setattr(node, HOOK, (*getattr(node, HOOK, ()), name))


class BoundedCodeGenerator(CodeGenerator):
    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        hooks: tuple[str, ...] = getattr(node, HOOK, ())
        if not hooks:
            return super().visit(node, *args, **kwargs)
        for hook in hooks:
            self.write(f"environment.{hook}(")
        super().visit(node, *args, **kwargs)
        self.write(")" * len(hooks))
        return None

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.join_parts(context, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if not isinstance(node, nodes.TemplateData):
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)
