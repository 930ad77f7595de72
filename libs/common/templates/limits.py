"""The bounds of template compilation and rendering, and the per-render budget.

Static bounds (module constants) are the same in every process, so the
gateway's save-time check and the executor's render can never disagree about
whether a template compiles. Render bounds (``TemplateLimits``) are tunable
per executor.

A ``Budget`` lives for one render of one action config. Every loop iteration,
call, filter, test and intercepted operator spends one step (filters over a
collection spend one per item); the clock is read every ``CLOCK_EVERY`` steps,
so the check stays cheap while a hostile template is stopped within a few
steps of its deadline. The active budget is found through a ContextVar, so the
shared environment needs no per-render state.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass

from libs.common.templates.errors import TemplateLimitExceeded

# --- static bounds (compile time) -----------------------------------------------------------------
MAX_SOURCE_CHARS = 65_536  # characters of one template string
MAX_TOKENS = 2_000  # lexer tokens of one template string: bounds parse, code generation and compile
MAX_CONFIG_TOKENS = 10_000  # lexer tokens of all the templates of one action config
MAX_NESTING = 80  # active recursive parser rules (brackets take 4 per level, blocks and unary operators 1-2)
MAX_AST_DEPTH = 64  # depth of the syntax tree (long operator or filter chains nest too)
MAX_CONFIG_DEPTH = 32  # nesting of the config's JSON (objects and arrays)

# --- static bounds (values) -----------------------------------------------------------------------
MAX_VALUE_CHARS = 1_000_000  # any string a template builds, or the rendered size of any collection
MAX_WIDTH = 10_000  # a width, padding, indent or precision given to a filter, method or format
MAX_INT_BITS = 16_384  # an integer a template computes (about 4,900 digits)
MAX_SLOW_INPUT_CHARS = 32_768  # input of the filters that work in Python per word
MAX_SLOW_INPUT_ITEMS = 10_000  # input of the filters that call Python per item in one call (sort, unique...)
MAX_CALL_DEPTH = 32  # nested calls (macros calling macros, recursive loops)
CLOCK_EVERY = 8  # steps between two reads of the clock

BUDGET: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    """Tunable bounds of one render (one action config)."""

    time_limit_ms: float = 100.0
    max_output_chars: int = 100_000
    max_iterations: int = 1_000_000

    def __post_init__(self) -> None:
        if self.time_limit_ms <= 0 or self.max_iterations < 1:
            raise ValueError("time_limit_ms and max_iterations must be positive")
        if not 1 <= self.max_output_chars <= MAX_VALUE_CHARS:
            raise ValueError(f"max_output_chars must be between 1 and {MAX_VALUE_CHARS}")


# A render may take this many times its time limit in wall-clock time when the machine is busy
# (other processes preempt it), as long as its own CPU time stays within the limit.
WALL_SLACK = 20.0


class Budget:
    """Steps, deadline and call depth of one render.

    The limit is wall-clock time (how long the event loop is held), but a render that reaches
    it having spent less than half of it on the CPU (``time.thread_time``) was mostly waiting
    for other processes to give the CPU back, not working: it goes on until it has used half
    the limit in CPU time, at most ``WALL_SLACK`` times the limit in all.  So a legitimate
    template is never failed, permanently, because the machine was busy, while a hostile one
    is stopped after the limit on a quiet machine and in proportion to its CPU share on a busy
    one.  The cheap wall clock is read on every check, the CPU clock only past the deadline.
    """

    __slots__ = ("cpu_start", "deadline", "depth", "hard_deadline", "limits", "steps", "_next_check")

    def __init__(self, limits: TemplateLimits) -> None:
        self.limits = limits
        self.steps = 0
        self.depth = 0
        now = time.perf_counter()
        seconds = limits.time_limit_ms / 1000.0
        self.deadline = now + seconds
        self.hard_deadline = now + seconds * WALL_SLACK
        self.cpu_start = time.thread_time()
        self._next_check = min(CLOCK_EVERY, limits.max_iterations + 1)

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps >= self._next_check:
            self.check()

    def check(self) -> None:
        """Raise when over the step limit or past the deadline."""
        limit = self.limits.max_iterations
        if self.steps > limit:
            raise TemplateLimitExceeded(f"loop limit exceeded (more than {limit} iterations)")
        now = time.perf_counter()
        if now > self.deadline:
            half = self.limits.time_limit_ms / 2000.0
            left = half - (time.thread_time() - self.cpu_start)
            if left <= 0 or now > self.hard_deadline:
                raise TemplateLimitExceeded(f"template took longer than {self.limits.time_limit_ms:g} ms")
            self.deadline = now + left  # mostly preempted, not working: look again once it could have worked
        self._next_check = min(self.steps + CLOCK_EVERY, limit + 1)


def tick(n: int = 1) -> None:
    """Spend ``n`` steps of the active budget, if any (a bare environment has none)."""
    budget = BUDGET.get()
    if budget is not None:
        budget.tick(n)
