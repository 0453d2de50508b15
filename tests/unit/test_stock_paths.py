"""Every statement that changes a SKU's stock or sold count goes through Redis first.

Redis decides and PostgreSQL must accept what Redis accepted. This test finds, in the mall's
own code, every SQL string that writes `skus.stock` or `skus.sold`, and checks that the
function running it moves the Redis side under the same row lock (StockMirror.take for units
taken away, StockMirror.hold for units given back), or is one of the few paths listed below
whose Redis side is decided elsewhere. A new path fails here until it does the same.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("accounts", "analytics", "audit", "catalog_api", "checkout", "coupons", "mall",
            "membership", "order_writer", "pricing", "recommendations", "seckill")
WRITES_SKU_STOCK = re.compile(
    r"UPDATE\s+skus\b(?:\s+\w+)?\s+SET\b[^;]*?\b(?:\w+\.)?(?:stock|sold)\s*=", re.I | re.S)
MIRROR_STEPS = {"take", "hold"}

# Paths whose Redis side was decided before they run, and why.
DECIDED_IN_REDIS = {
    # the writer persists orders that lua/reserve.lua accepted in Redis
    ("order_writer/store.py", "<module>"),
    # a return: recorded with the order's status change and applied to Redis once by
    # order_writer/returns.py (lua/release_skus.lua); lua/stock_init.lua leaves it out
    ("order_writer/stock.py", "<module>"),
}


def statements() -> dict[tuple[str, str], str]:
    """(file, name of the constant or function holding the SQL) -> the SQL."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            rel = str(path.relative_to(ROOT))
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                        and isinstance(node.value.value, str) \
                        and WRITES_SKU_STOCK.search(node.value.value):
                    found[(rel, node.targets[0].id)] = node.value.value  # type: ignore[attr-defined]
    return found


def functions_using(path: str, name: str) -> list[ast.AsyncFunctionDef | ast.FunctionDef]:
    tree = ast.parse((ROOT / path).read_text())
    users = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                isinstance(n, ast.Name) and n.id == name for n in ast.walk(node)):
            users.append(node)
    return users


def mirror_steps(func: ast.AST) -> set[str]:
    return {n.func.attr for n in ast.walk(func)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr in MIRROR_STEPS}


def test_the_search_finds_the_known_paths() -> None:
    found = statements()
    files = {path for path, _ in found}
    # the search itself works: it sees the writer, the returns, sales and staff edits
    assert {"order_writer/store.py", "order_writer/stock.py", "seckill/campaigns.py",
            "seckill/campaign_admin.py", "catalog_api/skus.py"} <= files, sorted(found)


def test_every_sku_stock_change_moves_redis_under_the_row_lock() -> None:
    unchecked = []
    for (path, const), _sql in sorted(statements().items()):
        if (path, "<module>") in DECIDED_IN_REDIS:
            continue
        users = functions_using(path, const)
        assert users, f"{path}: {const} is never run"
        for func in users:
            if not mirror_steps(func):
                unchecked.append(f"{path}:{func.lineno} {func.name} runs {const}")
    assert not unchecked, ("these change a SKU's stock in PostgreSQL without StockMirror.take "
                           "or .hold in the same function:\n" + "\n".join(unchecked))

