"""What can go wrong with a template: one base class, one subclass per way a caller reacts.

``code`` is the snake_case code the HTTP API uses for the condition.
"""

from __future__ import annotations


class TemplateProblem(Exception):
    """Base class; ``message`` is the human reason, without any prefix."""

    code = "template_error"

    def __init__(self, message: str, *, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path  # where in the config, filled in on the way out of the walk

    def where(self, prefix: str = "") -> str:
        """``prefix`` and the path joined with dots (``action.config.body.items.0``)."""
        return ".".join([prefix, *(str(p) for p in self.path)] if prefix else [str(p) for p in self.path])


class TemplateInvalid(TemplateProblem):
    """The source does not compile: syntax, or over a static bound (length, tokens, nesting)."""

    code = "invalid_template"
    tokens = 0  # how many tokens were read before the error (the check's cost)


class TemplateLimitExceeded(TemplateProblem):
    """Rendering went over a bound: time, work, output size, or the size of a value."""

    code = "template_limit_exceeded"


class TemplateFailed(TemplateProblem):
    """Rendering failed for another reason: undefined variable, sandbox violation, bad operand."""

    code = "template_error"
