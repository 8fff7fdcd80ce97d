"""The Jinja2 sandbox package templates run in, bounded in time and size.

A template is maintainer code that runs inside the server, so it gets
``ImmutableSandboxedEnvironment`` (no underscore attributes, no mutating methods)
with ``StrictUndefined``, and on top of that:

- **Size.** Every operation that can make a big value — ``*``, ``**``, ``+``, ``~``
  (concatenation, via a code generator that routes it here), the filters that take a
  width or a count — checks the size of its result *before* building it, against
  :attr:`Limits.max_value`, and charges it to a per-render allocation budget
  (:attr:`Limits.max_total`). ``'a' * 10**9`` fails in microseconds. Converting a value
  to text (``{{ x }}``, ``|string``, ``|tojson``, ``|join``) first weighs it with
  :func:`weight`, which counts shared references, so a list holding one big string
  ten thousand times cannot blow up on output. ``%``-formatting, ``|format``,
  ``str.format`` and every method outside a short allow-list are refused.
- **Method results.** The allowed methods go through :meth:`BerthSandbox.call`: the
  splits are cut off at :attr:`Limits.max_pieces` pieces (``str.split`` is handed a
  ``maxsplit`` one past the limit, so an over-long split costs at most that many
  pieces before it is refused), and every result is weighed and charged to the
  budget like a filter's, so results a template keeps in variables add up.
- **Time.** A deadline and a step budget, checked by a trace function installed only
  while rendering and active only in frames of template code (one check per template
  line executed), *and* on every call, filter and operator (one check per call). Jinja
  compiles a template to one Python function whose loops never call back into the
  sandbox, so a nested empty loop can only be stopped by tracing; one expression is
  one line, so a line of 400 calls can only be stopped in the calls. ``sys.settrace``
  is per thread, restores any tracer it replaced (debuggers, coverage), and costs
  nothing outside template frames.
- **Output.** Rendering uses ``generate()`` and stops once the text passes
  :attr:`Limits.max_output`.

These checks are the first line. Servers render maintainer templates in a child
process with a memory limit and a hard kill at the deadline
(:mod:`catalog.render_pool`), so what slips past them costs at most that child.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Cycler, Joiner, Namespace

__all__ = ["Limits", "LimitExceeded", "BerthSandbox", "weight", "bounded", "TEMPLATE_FILE"]

TEMPLATE_FILE = "<template>"  # what Jinja names code compiled by from_string()


@dataclass(frozen=True)
class Limits:
    """How far one render may go."""

    seconds: float = 2.0
    max_steps: int = 2_000_000  # template lines executed
    max_value: int = 1_000_000  # characters or items in any one value
    max_total: int = 16_000_000  # characters or items made over the whole render
    max_output: int = 256 * 1024  # characters of rendered text
    max_int_bits: int = 4096
    max_range: int = 10_000
    max_pieces: int = 10_000  # pieces of one split()/rsplit()/splitlines()


class LimitExceeded(Exception):
    """A render went past one of its :class:`Limits`."""


class _Budget:
    """What one render has used so far, against its limits."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.steps = 0
        self.spent = 0

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise LimitExceeded(f"the template ran more than {self.limits.max_steps} steps")
        if self.steps % 256 == 0 and time.monotonic() > self.deadline:
            raise LimitExceeded(f"the template ran longer than {self.limits.seconds:g} s")

    def call(self) -> None:
        """One call, filter or operator: a step, and a look at the clock (a single
        expression can hold any number of them)."""
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise LimitExceeded(f"the template ran more than {self.limits.max_steps} steps")
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"the template ran longer than {self.limits.seconds:g} s")

    def spend(self, amount: int) -> None:
        self.spent += amount
        if self.spent > self.limits.max_total:
            raise LimitExceeded("the template built more than "
                                f"{self.limits.max_total} characters/items in total")


_active = threading.local()
_DEFAULT = Limits()


def _budget() -> _Budget:
    budget = getattr(_active, "budget", None)
    return budget if budget is not None else _Budget(_DEFAULT)


def weight(value: Any, limit: int) -> int:
    """Characters/items ``value`` would take as text, counting shared references each
    time; stops counting once past ``limit``."""
    total = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > 64:
            raise LimitExceeded("a value is nested more than 64 levels deep")
        if isinstance(item, str | bytes):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2 + len(item)
            stack.extend((k, depth + 1) for k in item.keys())
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + len(item)
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
        else:
            total += 8
        if total > limit:
            return total
    return total


def bounded(value: Any, what: str = "a value") -> Any:
    """``value`` if it weighs at most ``max_value``, charged to the budget.

    :raises LimitExceeded: when it is bigger.
    """
    budget = _budget()
    size = weight(value, budget.limits.max_value)
    if size > budget.limits.max_value:
        raise LimitExceeded(f"{what} would exceed {budget.limits.max_value} characters/items")
    budget.spend(size)
    return value


def _len(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _check_binop(operator: str, left: Any, right: Any, limits: Limits) -> None:
    if operator == "%" and isinstance(left, str):
        raise LimitExceeded("%-formatting is not available in templates; use ~ and filters")
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if _len(seq) and isinstance(n, int) and _len(seq) * max(n, 0) > limits.max_value:
                raise LimitExceeded(f"repeating would exceed {limits.max_value} characters")
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > limits.max_int_bits:
                raise LimitExceeded("the number would be too large")
    if operator == "**" and isinstance(left, int) and isinstance(right, int):
        if abs(left) > 1 and right > 0 and left.bit_length() * right > limits.max_int_bits:
            raise LimitExceeded("the number would be too large")
    if operator == "+" and _len(left) + _len(right) > limits.max_value:
        raise LimitExceeded(f"concatenating would exceed {limits.max_value} characters")


class _GuardedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a size-checked join instead of a plain ``str.join``."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.guarded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _safe_range(*args: int) -> range:
    limits = _budget().limits
    rng = range(*args)
    if len(rng) > limits.max_range:
        raise LimitExceeded(f"range() is limited to {limits.max_range} items")
    return rng


_SAFE_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({"lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit",
                    "startswith", "endswith", "title", "capitalize", "isdigit", "isalpha",
                    "isalnum", "splitlines", "count", "find"}),
    dict: frozenset({"items", "keys", "values", "get"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
    LoopContext: frozenset({"cycle", "changed"}),
    Cycler: frozenset({"next", "reset"}),
}
_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def _split(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> Any:
    """``str.split``/``rsplit`` with at most ``limit`` pieces, else refused.

    The split itself is given ``maxsplit=limit``, so refusing costs at most ``limit + 1``
    pieces, never the millions a long string of separators would make.
    """
    if len(args) > 2 or set(kwargs) - {"sep", "maxsplit"}:
        return method(*args, **kwargs)  # the usual TypeError, before any splitting
    sep = args[0] if args else kwargs.get("sep")
    asked = args[1] if len(args) > 1 else kwargs.get("maxsplit", -1)
    if not isinstance(asked, int) or isinstance(asked, bool):
        raise TypeError("maxsplit must be an integer")
    cut = limit if asked < 0 or asked > limit else asked
    pieces = method(sep, cut)
    if len(pieces) > limit:
        raise LimitExceeded(f"{method.__name__}() would make more than {limit} pieces")
    return pieces


def _splitlines(text: str, args: tuple[Any, ...], kwargs: dict[str, Any], limit: int
                ) -> Any:
    """``str.splitlines`` after counting the line breaks (it has no ``maxsplit``)."""
    if sum(text.count(c) for c in _LINE_BREAKS) >= limit:
        raise LimitExceeded(f"splitlines() would make more than {limit} pieces")
    return text.splitlines(*args, **kwargs)


def _call_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any], limits: Limits
                 ) -> tuple[bool, Any]:
    """Run the splits bounded; ``(False, None)`` for every other callable."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return False, None
    name = getattr(obj, "__name__", "")
    if name in ("split", "rsplit"):
        return True, _split(obj, args, kwargs, limits.max_pieces)
    if name == "splitlines":
        return True, _splitlines(owner, args, kwargs, limits.max_pieces)
    return False, None


_REMOVED_FILTERS = {"format", "attr", "center", "indent", "wordwrap", "urlize", "xmlattr"}


def _check_replace(value: Any, old: Any, new: Any, count: Any = None) -> None:
    text, old, new = str(value), str(old), str(new)
    hits = len(text) + 1 if not old else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * len(new) > _budget().limits.max_value:
        raise LimitExceeded("replace() would make a value that is too large")


def _check_join(value: Any, sep: Any = "", attribute: Any = None) -> None:
    items = list(value) if isinstance(value, list | tuple) else []
    size = weight(items, _budget().limits.max_value) + len(str(sep)) * len(items)
    if size > _budget().limits.max_value:
        raise LimitExceeded("join() would make a value that is too large")


def _check_counts(value: Any, n: Any = 1, *args: Any, **kwargs: Any) -> None:
    if not isinstance(n, int) or not 1 <= n <= 10_000:
        raise LimitExceeded("the count must be a number from 1 to 10000")


def _check_sum(value: Any, attribute: Any = None, start: Any = 0) -> None:
    if not isinstance(start, int | float):
        raise LimitExceeded("sum() adds numbers only")


_ARG_CHECKS: dict[str, Callable[..., None]] = {
    "replace": _check_replace, "join": _check_join, "batch": _check_counts,
    "slice": _check_counts, "sum": _check_sum,
}


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its input weighed, its arguments checked and its result bounded."""
    check = _ARG_CHECKS.get(name)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _budget().call()
        values = [a for a in args
                  if not isinstance(a, Context | EvalContext | ImmutableSandboxedEnvironment)]
        if values:
            if isinstance(values[0], Undefined) and name not in ("default", "d"):
                values[0]._fail_with_undefined_error()  # the clear "x is undefined"
            bounded(values[0], f"the input of |{name}")
        if check is not None:
            check(*values, **kwargs)
        return bounded(func(*args, **kwargs), f"the result of |{name}")

    for attr in ("jinja_pass_arg", "__name__", "__doc__"):
        if hasattr(func, attr):
            setattr(guarded, attr, getattr(func, attr))
    return guarded


class BerthSandbox(ImmutableSandboxedEnvironment):
    """The one template environment of native Berth packages."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _GuardedCodeGenerator

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False,
                         keep_trailing_newline=True, finalize=self._finalize,
                         auto_reload=False, cache_size=0)
        self.filters = {name: _guard_filter(name, f) for name, f in DEFAULT_FILTERS.items()
                        if name not in _REMOVED_FILTERS}
        self.tests = dict(DEFAULT_TESTS)
        self.globals = {"range": _safe_range, "dict": dict, "namespace": Namespace,
                        "cycler": Cycler, "joiner": Joiner}
        self.policies["json.dumps_kwargs"] = {"sort_keys": False}

    @staticmethod
    def _finalize(value: Any) -> Any:
        return bounded(value, "an output value")

    def call(__self, __context: Context, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        """A call from template code: one step and a deadline check; the splits bounded
        in pieces; the result weighed and charged to the budget.

        (Jinja's own double-underscore names: a template may pass ``self=`` or
        ``context=`` as keywords.)
        """
        budget = _budget()
        budget.call()
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        done, result = _call_method(__obj, args, kwargs, budget.limits)
        if not done:
            result = __context.call(__obj, *args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            name = getattr(__obj, "__name__", "a call")
            return bounded(result, f"the result of {name}()")
        return result

    def guarded_concat(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ c`` with the size of the result checked first."""
        budget = _budget()
        budget.call()
        limits = budget.limits
        if sum(weight(p, limits.max_value) for p in parts) > limits.max_value:
            raise LimitExceeded(f"joining would exceed {limits.max_value} characters")
        joined: str = bounded("".join(str(p) for p in parts), "a joined value")
        return joined

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.call()
        _check_binop(operator, left, right, budget.limits)
        result = super().call_binop(context, operator, left, right)
        return bounded(result, "a computed value") if _len(result) else result

    def wrap_str_format(self, value: Any) -> None:
        """``str.format`` is refused like every other method off the allow-list: its
        width fields (``'{:>999999999}'``) would build any size of string."""
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or not super().is_safe_attribute(obj, attr, value):
            return False
        if callable(value):
            return any(isinstance(obj, kind) and attr in names
                       for kind, names in _SAFE_METHODS.items())
        return True


@contextmanager
def limited(limits: Limits) -> Iterator[_Budget]:
    """Enforce ``limits`` on template code run inside the ``with`` block (this thread)."""
    budget = _Budget(limits)
    previous_budget = getattr(_active, "budget", None)
    previous_trace = sys.gettrace()

    def local(frame: Any, event: str, arg: Any) -> Any:
        budget.tick()
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == TEMPLATE_FILE:
            budget.tick()
            return local
        # Not chained to a tracer that was installed (coverage, a debugger): coverage's
        # C tracer re-installs itself when called, which would switch the limits off.
        return None

    _active.budget = budget
    sys.settrace(tracer)
    try:
        yield budget
    finally:
        sys.settrace(previous_trace)
        _active.budget = previous_budget
