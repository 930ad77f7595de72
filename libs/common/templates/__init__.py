"""Templates of action configs: one bounded Jinja2 sandbox shared by the gateway and the executor.

- ``check.template_problems``: the save-time check (does every template compile?).
- ``engine.TemplateEngine``: renders a config within ``TemplateLimits`` (time,
  work, output) and the static bounds of ``limits``, with a compile cache
  bounded in bytes.
- ``errors``: ``TemplateInvalid`` (does not compile), ``TemplateLimitExceeded``
  (over a bound), ``TemplateFailed`` (any other failure), each with an API code.
"""

from libs.common.templates.check import template_problems
from libs.common.templates.engine import NeedsCompile, TemplateEngine
from libs.common.templates.errors import TemplateFailed, TemplateInvalid, TemplateLimitExceeded, TemplateProblem
from libs.common.templates.limits import TemplateLimits

__all__ = [
    "NeedsCompile",
    "TemplateEngine",
    "TemplateFailed",
    "TemplateInvalid",
    "TemplateLimitExceeded",
    "TemplateLimits",
    "TemplateProblem",
    "template_problems",
]
