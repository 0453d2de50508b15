"""Prepare a running demo mall for people to browse: a staff account for the back office, a
customer account, a live flash sale with stock and one that starts in a few minutes, then
print where to open them. Loopback only.

    python -m bench.demo_shop --url http://127.0.0.1:8080
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import click

from bench.burst import LOOPBACK, _json
from mall.auth import issue_token
from mall.settings import Settings

# Local demo accounts only: the demo listens on loopback and its database is `mall_demo`.
STAFF = ("staff@flashmall.demo", "flashmall-demo")
CUSTOMER = ("buyer@flashmall.demo", "flashmall-demo")


async def _account(session: aiohttp.ClientSession, base: str, email: str,
                   password: str) -> str:
    """The account's user id: registered now, or signed in when it exists already."""
    status, body = await _json(session, "POST", f"{base}/api/v1/auth/register",
                               json={"email": email, "password": password})
    if status == 201:
        return str(body["user"]["user_id"])
    status, body = await _json(session, "POST", f"{base}/api/v1/auth/login",
                               json={"login": email, "password": password})
    if status != 200:
        raise click.ClickException(f"cannot sign in {email}: {status} {body}")
    return str(body["user"]["user_id"])


async def _sale(session: aiohttp.ClientSession, base: str, headers: dict[str, str], name: str,
                price: int, sale_price: int, stock: int, starts_in: timedelta) -> dict[str, Any]:
    status, product = await _json(session, "POST", f"{base}/api/v1/admin/products",
                                  headers=headers, json={
        "name": name, "description": "flashmall demo",
        "skus": [{"price": price, "stock": stock * 3, "attributes": {"颜色": "黑 black"}},
                 {"price": price, "stock": stock * 3, "attributes": {"颜色": "白 white"}}]})
    if status != 201:
        raise click.ClickException(f"creating {name} answered {status}: {product}")
    now = datetime.now(UTC)
    status, sale = await _json(session, "POST", f"{base}/api/v1/admin/flash-sales",
                               headers=headers, json={
        "sku_id": product["skus"][0]["id"], "price": sale_price, "stock": stock,
        "per_user_limit": 1, "starts_at": (now + starts_in).isoformat(),
        "ends_at": (now + starts_in + timedelta(hours=2)).isoformat()})
    if status != 201:
        raise click.ClickException(f"creating the sale of {name} answered {status}: {sale}")
    return dict(sale)


async def prepare(base: str, settings: Settings) -> None:
    token = issue_token(settings.jwt_secret, "demo-admin", "admin", 600)
    admin = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        staff_id = await _account(session, base, *STAFF)
        status, body = await _json(session, "PUT", f"{base}/api/v1/admin/users/{staff_id}/role",
                                   headers=admin, json={"role": "staff"})
        if status != 200:
            raise click.ClickException(f"making {STAFF[0]} staff answered {status}: {body}")
        await _account(session, base, *CUSTOMER)
        live = await _sale(session, base, admin, "限量耳机 Limited earbuds", 59900, 19900, 50,
                           timedelta(seconds=-5))
        soon = await _sale(session, base, admin, "新品手表 New watch", 129900, 69900, 20,
                           timedelta(minutes=3))
    print(f"storefront      {base}/   (customer {CUSTOMER[0]} / {CUSTOMER[1]}, or sign up)")
    print(f"back office     {base}/backoffice/   (staff {STAFF[0]} / {STAFF[1]})")
    print(f"flash sales     #{live['id']} live with {live['remaining']} units, "
          f"#{soon['id']} starts at {soon['starts_at']}")


@click.command()
@click.option("--url", default="http://127.0.0.1:8080", show_default=True)
def main(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        raise click.BadParameter("the demo only talks to loopback", param_hint="--url")
    asyncio.run(prepare(url.rstrip("/"), Settings.from_env()))


if __name__ == "__main__":
    main()
