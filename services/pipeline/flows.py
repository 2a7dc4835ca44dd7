"""The ready-made flows: graphs like any other run, answered in their own shape."""

from __future__ import annotations

from typing import Any

from services.kit.errors import ApiError

from .dag import RunResult, Step, ref

NUMBERS = ref("input.numbers")

# sum and product together, then their quotient; squares and roots together, then the
# total of each, then the total of both. Three levels, eight calls to calc.
STATS = {
    "sum": Step("sum", {"numbers": NUMBERS}),
    "product": Step("product", {"numbers": NUMBERS}),
    "quotient": Step("quotient", {"product": ref("product.product"), "sum": ref("sum.sum")}),
    "squares": Step("squares", {"numbers": NUMBERS}),
    "roots": Step("roots", {"numbers": NUMBERS}),
    "squares_total": Step("sum", {"numbers": ref("squares.squares")}),
    "roots_total": Step("sum", {"numbers": ref("roots.roots")}),
    "total": Step("sum", {"numbers": [ref("squares_total.sum"), ref("roots_total.sum")]}),
}

# facts, then factcheck on what came.
CATS = {
    "facts": Step("facts", {"amount": ref("input.amount")}),
    "checked": Step("factcheck", {"facts": ref("facts.facts")}),
}


def outcome(result: RunResult) -> dict[str, Any]:
    """Each step's output; the first failure (in graph order) as the flow's error."""
    failures = result.failures()
    if failures:
        step, error = failures[0]
        raise ApiError(
            error["status"],
            f"{step}: {error['error']}",
            code=error["code"],
            details=error["details"],
        )
    return {name: step.output for name, step in result.steps.items()}


def stats_answer(result: RunResult) -> dict[str, Any]:
    out = outcome(result)
    return {
        "sum": out["sum"]["sum"],
        "product": out["product"]["product"],
        "quotient": out["quotient"]["quotient"],
        "squares": out["squares"]["squares"],
        "roots": out["roots"]["roots"],
        "total": out["total"]["sum"],
    }


def cats_answer(result: RunResult) -> dict[str, Any]:
    out = outcome(result)
    kept = out["checked"]["facts"]
    return {
        "facts": kept,
        "requested": out["facts"]["requested"],
        "fetched": len(out["facts"]["facts"]),
        "kept": len(kept),
    }
