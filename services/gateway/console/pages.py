"""The console's pages: the path segment, the title, and whether the page is in the navigation.

Each page is one HTML shell (``templates/shell.html``) and one ES module
(``static/js/pages/<name>.js``) that fills it from the public API.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    name: str
    title: str
    nav: bool = True


PAGES: tuple[Page, ...] = (
    Page("login", "Log in", nav=False),
    Page("workflows", "Workflows"),
    Page("workflow", "Workflow", nav=False),
    Page("executions", "Executions"),
    Page("execution", "Execution", nav=False),
    Page("dlq", "Dead letters"),
    Page("credentials", "Credentials"),
    Page("keys", "API keys"),
    Page("system", "System"),
)
HOME = "executions"
