"""The small expression language of claims and inline values.

Answer text is parsed with Python's ``ast`` and then walked with a strict whitelist into the
node tree below; answer text is never handed to ``eval``, ``exec`` or ``compile``. Anything
the whitelist does not name (strings, lambdas, comprehensions, dunder or chained attributes,
calls of other functions, bare names) is refused with the answer's ``file:line``.

Names are ``demo.field``: a demonstration of the answer and a field of its result. Which
fields exist is only known once the demonstration ran, so an unknown field is an error at
evaluation time, naming the fields that do exist.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping

import numpy as np

from kb.answers.numbers import quantity
from kb.answers.stats import AGGREGATES, Effect
from kb.model import AnswerError, Location

# demonstration name -> that demonstration's result fields
Results = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class SeedSample:
    """The results of every seed of a sample, in order: what a finding is evaluated on.
    Only aggregates over seeds read it; inside one, each seed's ``Results`` in turn."""

    seeds: tuple[int, ...]
    per_seed: tuple[Results, ...]


class EvaluationError(ValueError):
    """An expression that cannot be evaluated on the given results; the message names the part."""


def format_quantity(value: Any) -> str:
    """A value as people read it in a claim's detail: 4 significant digits, powers of ten as
    ×10⁻³, short arrays."""
    return quantity(value)


def is_nan(value: Any) -> bool:
    """Whether a value is or contains NaN (shown to people as an error, never as 'nan')."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "fc" and bool(np.isnan(value).any())
    return isinstance(value, (float, np.floating)) and math.isnan(value)


# Floating-point trouble raises instead of leaving a silent inf or NaN; underflow to 0 is fine.
_FLOAT_ERRORS = {"divide": "raise", "over": "raise", "invalid": "raise", "under": "ignore"}


def _guarded(text: str, compute: Callable[[], Any]) -> Any:
    try:
        with np.errstate(**_FLOAT_ERRORS):
            return compute()
    except ZeroDivisionError:
        raise EvaluationError(f"division by zero in '{text}'") from None
    # TypeError/ValueError: e.g. a string in arithmetic, arrays whose shapes do not broadcast
    except (OverflowError, FloatingPointError, TypeError, ValueError) as exc:
        raise EvaluationError(f"'{text}': {exc}") from None


def truth(value: Any, text: str) -> bool:
    """``value`` (the value of ``text``) as a bool; numbers and arrays are refused, not guessed."""
    if isinstance(value, np.ndarray):
        raise EvaluationError(
            f"'{text}' is an array, which is neither true nor false: use all(...) or any(...)"
        )
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise EvaluationError(f"'{text}' is {format_quantity(value)}, not True or False")


class Node:
    """A node of the expression tree; ``text`` is its source as written."""

    text: str

    def eval(self, results: Results) -> Any:  # pragma: no cover - every node overrides
        raise NotImplementedError

    def children(self) -> tuple["Node", ...]:
        return ()


@dataclass(frozen=True)
class Const(Node):
    value: int | float | bool
    text: str

    def eval(self, results: Results) -> Any:
        return self.value


@dataclass(frozen=True)
class Ref(Node):
    demo: str
    field: str
    text: str

    def eval(self, results: Results) -> Any:
        if isinstance(results, SeedSample):  # the parser keeps this from happening
            raise EvaluationError(f"'{self.text}' must be inside an aggregate over seeds")
        values = results[self.demo]
        if self.field not in values:
            known = sorted(values)
            close = difflib.get_close_matches(self.field, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise EvaluationError(
                f"demonstration '{self.demo}' has no field '{self.field}'"
                f" (it has: {', '.join(known) or 'none'}){hint}"
            )
        return values[self.field]


@dataclass(frozen=True)
class Index(Node):
    target: Node
    index: int
    text: str

    def eval(self, results: Results) -> Any:
        value = self.target.eval(results)
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            raise EvaluationError(
                f"'{self.target.text}' is {format_quantity(value)}, not an array to index"
            )
        if not -len(value) <= self.index < len(value):
            raise EvaluationError(
                f"index {self.index} is out of range in '{self.text}'"
                f" ('{self.target.text}' has {len(value)} elements)"
            )
        return value[self.index]

    def children(self) -> tuple[Node, ...]:
        return (self.target,)


_UNARY: dict[type, tuple[str, Callable]] = {
    ast.USub: ("-", operator.neg),
    ast.UAdd: ("+", operator.pos),
}

_BINARY: dict[type, tuple[str, Callable]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
}

COMPARISONS: dict[str, Callable] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_COMPARE_OPS = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-", "+" or "not"
    operand: Node
    text: str

    def eval(self, results: Results) -> Any:
        value = self.operand.eval(results)
        if self.op == "not":
            return not truth(value, self.operand.text)
        return _guarded(self.text, lambda: _UNARY_BY_SYMBOL[self.op](value))

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


def _power(base: Any, exponent: Any) -> Any:
    # Integer powers are computed in floating point, so `10 ** 10 ** 10` overflows at once
    # instead of building a gigantic integer.
    return np.float64(base) ** exponent if not isinstance(base, np.ndarray) else base**exponent


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node
    text: str

    def eval(self, results: Results) -> Any:
        left, right = self.left.eval(results), self.right.eval(results)
        fn = _power if self.op == "**" else _BINARY_BY_SYMBOL[self.op]
        return _guarded(self.text, lambda: fn(left, right))

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


_UNARY_BY_SYMBOL = dict(_UNARY.values())
_BINARY_BY_SYMBOL = dict(_BINARY.values())


@dataclass(frozen=True)
class Logic(Node):
    # "and" or "or"; short-circuits like Python, so a guard (`len(x) > 2 and x[2] > 0`) works
    op: str
    operands: tuple[Node, ...]
    text: str

    def eval(self, results: Results) -> Any:
        deciding = self.op == "or"  # the truth value that ends the evaluation early
        for operand in self.operands:
            if truth(operand.eval(results), operand.text) == deciding:
                return deciding
        return not deciding

    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True)
class Compare(Node):
    """A comparison, possibly chained: ``0.9 < x < 1.1``; elementwise on arrays."""

    operands: tuple[Node, ...]
    ops: tuple[str, ...]
    text: str

    def operand_values(self, results: Results) -> list[Any]:
        return [operand.eval(results) for operand in self.operands]

    def links(self, values: list[Any]) -> list[Any]:
        """The truth of each link ``a op b`` of the chain (arrays of bools for arrays)."""
        return [
            _guarded(self.text, lambda i=i, op=op: COMPARISONS[op](values[i], values[i + 1]))
            for i, op in enumerate(self.ops)
        ]

    def eval(self, results: Results) -> Any:
        links = self.links(self.operand_values(results))
        if any(isinstance(link, np.ndarray) for link in links):
            return np.logical_and.reduce(np.broadcast_arrays(*links))
        return all(bool(link) for link in links)

    def children(self) -> tuple[Node, ...]:
        return self.operands


def _reduce(fn: Callable) -> Callable:
    # One argument: an array to reduce; several (min and max only): the numbers themselves.
    return lambda *args: fn(np.asarray(args[0]) if len(args) == 1 else np.array(args))


def _length(value: Any) -> int:
    if not isinstance(value, np.ndarray) or value.ndim == 0:
        raise TypeError(f"len() needs an array, got {format_quantity(value)}")
    return len(value)


FUNCTIONS: dict[str, Callable] = {
    "abs": np.abs,
    "min": _reduce(np.min),
    "max": _reduce(np.max),
    "mean": _reduce(np.mean),
    "sum": _reduce(np.sum),
    "len": _length,
    "all": lambda value: bool(np.all(value)),
    "any": lambda value: bool(np.any(value)),
    "sqrt": np.sqrt,
    "log": np.log,
    "exp": np.exp,
}
_VARIADIC = {"min", "max"}  # one or more arguments; every other function takes exactly one


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]
    text: str

    def eval(self, results: Results) -> Any:
        args = [arg.eval(results) for arg in self.args]
        return _guarded(self.text, lambda: FUNCTIONS[self.func](*args))

    def children(self) -> tuple[Node, ...]:
        return self.args


@dataclass(frozen=True)
class Aggregate(Node):
    """An aggregate over the seeds of a sample (``ci_low(x.gap)``, ``frac(x.r > 1)``): its
    argument is computed once per seed and the per-seed values reduced across seeds."""

    func: str
    arg: Node
    extra: tuple[Node, ...]  # constants after the values (quantile's q)
    text: str

    def per_seed(self, sample: Results) -> np.ndarray:
        """The argument's value at each seed, stacked (one row per seed)."""
        if not isinstance(sample, SeedSample):
            raise EvaluationError(f"'{self.text}' needs the answer's sample of seeds")
        values = [self.arg.eval(results) for results in sample.per_seed]
        return _guarded(self.text, lambda: np.asarray(values))

    def eval(self, results: Results) -> Any:
        values = self.per_seed(results)
        extra = [node.eval(results) for node in self.extra]
        return _guarded(self.text, lambda: AGGREGATES[self.func][0](values, *extra))

    def children(self) -> tuple[Node, ...]:
        return (self.arg, *self.extra)


@dataclass(frozen=True)
class EffectOf(Aggregate):
    """``effect(x)`` in prose: the mean of ``x`` over the sample with its confidence interval."""

    def eval(self, results: Results) -> Any:
        values = self.per_seed(results)
        seeds = results.seeds  # per_seed has checked that this is a sample
        return _guarded(self.text, lambda: Effect.of(self.arg.text, seeds, values))


@dataclass(frozen=True)
class Approx(Node):
    """``approx(actual, expected, rel=..., abs=...)``:
    ``|actual - expected| <= max(rel * |expected|, abs)``, elementwise.

    Without either tolerance it means rel=1e-6 (as pytest.approx does); with only one, the
    other is 0.
    """

    actual: Node
    expected: Node
    rel: Node | None
    abs: Node | None
    text: str

    def measure(self, results: Results) -> tuple[Any, Any, Any, Any]:
        """(actual, expected, |actual - expected|, allowed tolerance)."""
        actual, expected = self.actual.eval(results), self.expected.eval(results)
        rel = self._tolerance(self.rel, results)
        abs_ = self._tolerance(self.abs, results)
        if self.rel is None and self.abs is None:
            rel = 1e-6
        diff = _guarded(self.text, lambda: np.abs(np.subtract(actual, expected, dtype=float)))
        tol = _guarded(
            self.text, lambda: np.maximum(rel * np.abs(np.asarray(expected, float)), abs_)
        )
        return actual, expected, diff, tol

    def _tolerance(self, node: Node | None, results: Results) -> float:
        if node is None:
            return 0.0
        value = node.eval(results)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise EvaluationError(f"tolerance '{node.text}' must be a number")
        if not value >= 0:
            raise EvaluationError(f"tolerance '{node.text}' = {format_quantity(value)} is negative")
        return float(value)

    def eval(self, results: Results) -> Any:
        _, _, diff, tol = self.measure(results)
        return bool(np.all(diff <= tol))

    def children(self) -> tuple[Node, ...]:
        return tuple(n for n in (self.actual, self.expected, self.rel, self.abs) if n is not None)


@dataclass(frozen=True)
class Expression:
    """A parsed expression of an answer: its source, its tree and where it was written."""

    source: str
    root: Node
    location: Location

    def demos(self) -> set[str]:
        """The demonstrations it reads."""
        found, stack = set(), [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Ref):
                found.add(node.demo)
            stack.extend(node.children())
        return found

    def aggregates(self) -> list[Aggregate]:
        """Its aggregates over seeds, outermost first, in reading order."""
        found, stack = [], [self.root]
        while stack:
            node = stack.pop(0)
            if isinstance(node, Aggregate):
                found.append(node)
            else:
                stack[:0] = node.children()
        return found

    @property
    def over_seeds(self) -> bool:
        """Whether it is evaluated on a sample of seeds (it reads demonstrations only through
        aggregates over seeds) rather than on one run."""
        return bool(self.aggregates())

    def evaluate(self, results: Results) -> Any:
        """The value on ``results`` (which must hold every demonstration of ``demos()``; a
        ``SeedSample`` when ``over_seeds``).

        Raises AnswerError at this expression's location when it cannot be evaluated.
        """
        try:
            return self.root.eval(results)
        except EvaluationError as exc:
            raise AnswerError(self.location, str(exc)) from None


# Conditions must be true or false by construction; arithmetic at the top is a mistake.
_CONDITION_ROOTS = (Compare, Logic, Approx)


# Aggregates over seeds that mean nothing within one run; mean, min and max do both.
SEED_ONLY = frozenset(AGGREGATES) - frozenset(FUNCTIONS) | {"effect"}
_AGGREGATE_NAMES = ", ".join(AGGREGATES)


def parse_expression(source: str, location: Location, demo_names: Collection[str]) -> Expression:
    """Parse an inline value's expression; raise AnswerError naming the line of the problem.

    An expression that uses an aggregate only a sample has (``effect``, ``ci_low``, ``frac``...)
    is read over the answer's seeds, as a finding's condition is; any other over one run.
    """
    over_seeds = any(isinstance(node, ast.Call) and getattr(node.func, "id", None) in SEED_ONLY
                     for node in ast.walk(_parse_or_none(source)))
    walker = _Walker(source, location, demo_names, over_seeds=over_seeds, inline=True)
    return Expression(source.strip(), walker.walk_source(), location)


def parse_condition(source: str, location: Location, demo_names: Collection[str],
                    kind: str = "check") -> Expression:
    """Parse a claim's condition: like an expression, but its top must be true or false.

    A ``finding`` reads every demonstration through an aggregate over seeds; a ``check`` holds
    for every seed on its own and may not use them.
    """
    walker = _Walker(source, location, demo_names, over_seeds=kind == "finding")
    expression = Expression(source.strip(), walker.walk_source(), location)
    root = expression.root
    boolean = (
        isinstance(root, _CONDITION_ROOTS)
        or (isinstance(root, Unary) and root.op == "not")
        or (isinstance(root, Call) and root.func in ("all", "any"))
        or (isinstance(root, Const) and isinstance(root.value, bool))
    )
    if not boolean:
        raise AnswerError(
            location,
            f"condition '{source.strip()}' is not true or false: use a comparison,"
            " approx(...), all(...), any(...), not, and, or",
        )
    if kind == "finding" and not expression.over_seeds:
        raise AnswerError(location, f"finding '{source.strip()}' measures nothing over seeds: "
                                    f"use an aggregate ({_AGGREGATE_NAMES}) of a demo.field")
    return expression


def _parse_or_none(source: str) -> ast.AST:
    """The ast of ``source`` if it parses (the walker reports syntax errors properly)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse("(" + source.strip() + "\n)", mode="eval")
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


class _Walker:
    """Turns the ``ast`` of one expression into Nodes, refusing everything not whitelisted."""

    def __init__(self, source: str, location: Location, demo_names: Collection[str], *,
                 over_seeds: bool = False, inline: bool = False):
        self.source = source.strip()
        self.over_seeds = over_seeds  # demo.field only inside an aggregate over seeds
        self.inline = inline  # an inline value: effect(...) is allowed
        self.in_aggregate = False
        # Parentheses allow a condition to span lines; the newline ends a trailing comment.
        self.wrapped = "(" + self.source + "\n)"
        self.location = location
        self.demo_names = set(demo_names)

    def refuse(self, node: ast.AST | None, message: str) -> AnswerError:
        # Lines of the source map onto lines of the file from the expression's first line;
        # an error found at the closing parenthesis we added belongs to the last real line.
        offset = min(getattr(node, "lineno", None) or 1, self.source.count("\n") + 1) - 1
        line = Location(self.location.path, self.location.line + offset)
        return AnswerError(line, message)

    def walk_source(self) -> Node:
        if not self.source:
            raise self.refuse(None, "empty expression")
        try:
            with warnings.catch_warnings():
                # What Python merely warns about (`1if x`, `x is 1`) is refused, not printed.
                warnings.simplefilter("error", SyntaxWarning)
                tree = ast.parse(self.wrapped, mode="eval")
        except SyntaxError as exc:
            raise self.refuse(exc, f"syntax error in '{self.source}': {exc.msg}") from None
        except SyntaxWarning as exc:
            raise self.refuse(None, f"syntax error in '{self.source}': {exc}") from None
        return self.walk(tree.body)

    def text(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.wrapped, node) or ast.unparse(node)

    def walk(self, node: ast.AST) -> Node:
        method = getattr(self, f"walk_{type(node).__name__}", None)
        if method is None:
            raise self.refuse(node, f"{_describe(node)} is not allowed in '{self.source}'")
        return method(node)

    def walk_Constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, (bool, int, float)):
            return Const(value, self.text(node))
        raise self.refuse(node, f"{_describe(node)} is not allowed in '{self.source}'")

    def walk_Name(self, node: ast.Name) -> Node:
        if node.id in self.demo_names:
            raise self.refuse(node, f"'{node.id}' needs a field: write '{node.id}.<field>'")
        raise self.refuse(node, f"unknown name '{node.id}': names are demo.field, {self._demos()}")

    def walk_Attribute(self, node: ast.Attribute) -> Node:
        if node.attr.startswith("_"):
            raise self.refuse(
                node,
                f"attribute '{node.attr}' is not allowed (names starting with '_' are refused)",
            )
        base = node.value
        if not isinstance(base, ast.Name):
            raise self.refuse(
                node, f"'{self.text(node)}' is not allowed: names are demo.field, one dot only"
            )
        if base.id not in self.demo_names:
            raise self.refuse(
                node, f"unknown demonstration '{base.id}' in '{self.text(node)}': {self._demos()}"
            )
        if self.over_seeds and not self.in_aggregate:
            raise self.refuse(node, f"'{self.text(node)}' is measured over seeds here: put it "
                                    f"inside an aggregate ({_AGGREGATE_NAMES})")
        return Ref(base.id, node.attr, self.text(node))

    def walk_Subscript(self, node: ast.Subscript) -> Node:
        index = node.slice
        negative = isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub)
        constant = index.operand if negative else index
        if not (isinstance(constant, ast.Constant) and type(constant.value) is int):
            raise self.refuse(
                node, f"'{self.text(node)}': only indexing with an integer constant is allowed"
            )
        value = -constant.value if negative else constant.value
        return Index(self.walk(node.value), value, self.text(node))

    def walk_UnaryOp(self, node: ast.UnaryOp) -> Node:
        if isinstance(node.op, ast.Not):
            return Unary("not", self.walk(node.operand), self.text(node))
        if type(node.op) not in _UNARY:
            raise self.refuse(node, f"operator in '{self.text(node)}' is not allowed")
        return Unary(_UNARY[type(node.op)][0], self.walk(node.operand), self.text(node))

    def walk_BinOp(self, node: ast.BinOp) -> Node:
        if type(node.op) not in _BINARY:
            raise self.refuse(node, f"operator in '{self.text(node)}' is not allowed")
        return Binary(
            _BINARY[type(node.op)][0], self.walk(node.left), self.walk(node.right), self.text(node)
        )

    def walk_BoolOp(self, node: ast.BoolOp) -> Node:
        op = "and" if isinstance(node.op, ast.And) else "or"
        return Logic(op, tuple(self.walk(v) for v in node.values), self.text(node))

    def walk_Compare(self, node: ast.Compare) -> Node:
        ops = []
        for op in node.ops:
            if type(op) not in _COMPARE_OPS:
                raise self.refuse(
                    node, f"comparison in '{self.text(node)}' is not allowed (use < <= > >= == !=)"
                )
            ops.append(_COMPARE_OPS[type(op)])
        operands = (self.walk(node.left), *(self.walk(c) for c in node.comparators))
        return Compare(operands, tuple(ops), self.text(node))

    def walk_Call(self, node: ast.Call) -> Node:
        allowed = ", ".join([*FUNCTIONS, "approx"])
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Lambda):
                raise self.refuse(node.func, f"lambda is not allowed in '{self.source}'")
            raise self.refuse(node, f"'{self.text(node.func)}' cannot be called: only {allowed}")
        name = node.func.id
        if name == "approx":
            return self._approx(node)
        if self.over_seeds and not self.in_aggregate and name in AGGREGATES:
            return self._aggregate(node)
        if name == "effect" and self.over_seeds and self.inline and not self.in_aggregate:
            return self._aggregate(node)
        if name == "effect":
            raise self.refuse(node, "effect() shows an effect in prose; a condition compares "
                                    f"an aggregate ({_AGGREGATE_NAMES})")
        if name in SEED_ONLY:
            where = "inside another aggregate" if self.in_aggregate else "in a check, which " \
                "must hold for every seed on its own"
            raise self.refuse(node, f"{name}() is an aggregate over seeds: it cannot be used "
                                    f"{where} (a finding uses it: kind: finding)")
        if name not in FUNCTIONS:
            raise self.refuse(node, f"function '{name}' is not allowed: only {allowed}")
        if node.keywords:
            raise self.refuse(node, f"{name}() takes no keyword arguments")
        if not node.args or (name not in _VARIADIC and len(node.args) != 1):
            arity = "one or more arguments" if name in _VARIADIC else "one argument"
            raise self.refuse(node, f"{name}() takes {arity}")
        return Call(name, tuple(self.walk(arg) for arg in node.args), self.text(node))

    def _aggregate(self, node: ast.Call) -> Node:
        name = node.func.id
        extra = 1 if name == "quantile" else 0
        if node.keywords or len(node.args) != 1 + extra:
            usage = "quantile(values, q)" if extra else f"{name}(values)"
            raise self.refuse(node, f"{name}() over seeds takes {usage}")
        self.in_aggregate = True
        try:
            arg = self.walk(node.args[0])
        finally:
            self.in_aggregate = False
        rest = tuple(self.walk(a) for a in node.args[1:])
        if any(not isinstance(r, Const) for r in rest):
            raise self.refuse(node, f"{name}()'s q must be a number")
        kind = EffectOf if name == "effect" else Aggregate
        return kind(name, arg, rest, self.text(node))

    def _approx(self, node: ast.Call) -> Node:
        if len(node.args) != 2:
            raise self.refuse(
                node, "approx() takes two arguments: approx(actual, expected, rel=..., abs=...)"
            )
        tolerances: dict[str, Node] = {}
        for keyword in node.keywords:
            if keyword.arg not in ("rel", "abs") or keyword.arg in tolerances:
                raise self.refuse(
                    node, f"approx() takes only rel= and abs= once each, not '{keyword.arg}='"
                )
            tolerances[keyword.arg] = self.walk(keyword.value)
        actual, expected = (self.walk(arg) for arg in node.args)
        return Approx(
            actual, expected, tolerances.get("rel"), tolerances.get("abs"), self.text(node)
        )

    def _demos(self) -> str:
        names = ", ".join(sorted(self.demo_names))
        return f"the demonstrations are: {names}" if names else "this answer has no demonstrations"


_DESCRIPTIONS = {
    ast.Lambda: "lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "a string",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "unpacking (*)",
    ast.IfExp: "if/else",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, bytes)):
            return "a string"
        return f"the constant {node.value!r}"
    return _DESCRIPTIONS.get(type(node), type(node).__name__)
