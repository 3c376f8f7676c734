"""Magento 2 REST API stand-in: ``/rest/V1/customers/search`` and ``/rest/V1/orders``.

Shapes follow the Magento 2 REST reference: ``searchCriteria[filter_groups][g][filters][f]``
(field, value, condition_type), ``searchCriteria[sortOrders][n]`` (field, direction),
``pageSize``/``currentPage``; answers ``{"items": [...], "search_criteria": {...},
"total_count": n}``. Like Magento, a page past the end answers with the last page again.
Errors are ``{"message": ..., "parameters": ...}``; a missing or wrong bearer token is 401.
"""

from __future__ import annotations

import bisect
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.stand_ins.base import Answer, Request, StandIn

_CRIT = re.compile(r"^searchCriteria\[filter_groups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(\w+)\]$")
_SORT = re.compile(r"^searchCriteria\[sortOrders\]\[(\d+)\]\[(\w+)\]$")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(seconds: int) -> str:
    """Magento's timestamp format (UTC, no zone)."""
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def customer(cid: int, *, updated: int | None = None, email: str | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "group_id": 1,
        "default_billing": str(1000 + cid),
        "created_at": stamp(cid),
        "updated_at": stamp(cid if updated is None else updated),
        "created_in": "Default Store View",
        "dob": "1990-04-0" + str(cid % 9 + 1),
        "email": email or f"customer{cid}@example.com",
        "firstname": f"First{cid}",
        "lastname": f"Last{cid}",
        "gender": cid % 3 + 1,
        "store_id": 1,
        "website_id": 1,
        "addresses": [
            {
                "id": 1000 + cid,
                "customer_id": cid,
                "region": {"region_code": "NH", "region": "Noord-Holland", "region_id": 0},
                "country_id": "NL",
                "street": [f"Damstraat {cid}"],
                "telephone": "0201234567",
                "postcode": "1012AB",
                "city": "Amsterdam",
                "firstname": f"First{cid}",
                "lastname": f"Last{cid}",
                "default_billing": True,
            }
        ],
        "disable_auto_group_change": 0,
        "extension_attributes": {"is_subscribed": False},
        "custom_attributes": [{"attribute_code": "loyalty_tier", "value": "gold"}],
    }


def order(
    oid: int,
    *,
    email: str,
    customer_id: int | None,
    total: float = 99.5,
    created: int = 0,
    updated: int | None = None,
    status: str = "pending",
) -> dict[str, Any]:
    guest = customer_id is None
    data: dict[str, Any] = {
        "entity_id": oid,
        "increment_id": f"0000{oid:05d}",
        "state": "new",
        "status": status,
        "customer_email": email,
        "customer_firstname": "Guest" if guest else f"First{customer_id}",
        "customer_lastname": "Shopper" if guest else f"Last{customer_id}",
        "customer_is_guest": 1 if guest else 0,
        "grand_total": total,
        "base_grand_total": total,
        "order_currency_code": "EUR",
        "created_at": stamp(created),
        "updated_at": stamp(created if updated is None else updated),
        "items": [
            {
                "item_id": oid * 10,
                "sku": "MUG-1",
                "name": "Coffee mug",
                "qty_ordered": 2,
                "price": total / 2,
                "product_type": "simple",
            }
        ],
        "billing_address": {"email": email, "city": "Utrecht", "country_id": "NL"},
        "payment": {"method": "checkmo"},
    }
    if not guest:
        data["customer_id"] = customer_id
    return data


class MagentoStandIn(StandIn):
    def __init__(self, token: str = "magento-token") -> None:
        super().__init__()
        self.token = token
        self.customers: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self._index: dict[str, list[tuple[str, int]]] = {}

    def put_customers(self, *records: dict[str, Any]) -> None:
        for r in records:
            self.customers[int(r["id"])] = r
        self._index.pop("customers", None)

    def put_orders(self, *records: dict[str, Any]) -> None:
        for r in records:
            self.orders[int(r["entity_id"])] = r
        self._index.pop("orders", None)

    def handle(self, req: Request) -> Answer:
        if req.header("Authorization") != f"Bearer {self.token}":
            return Answer(
                401,
                {
                    "message": "The consumer isn't authorized to access %resources.",
                    "parameters": {"resources": "Magento_Customer::customer"},
                },
            )
        if req.method == "GET" and req.path == "/rest/V1/customers/search":
            return self._search(req, "customers", self.customers, "id")
        if req.method == "GET" and req.path == "/rest/V1/orders":
            return self._search(req, "orders", self.orders, "entity_id")
        return Answer(404, {"message": "Request does not match any route."})

    def _search(self, req: Request, kind: str, table: dict[int, Any], key: str) -> Answer:
        if not any(k.startswith("searchCriteria") for k in req.query):
            return Answer(
                400,
                {
                    "message": '"%fieldName" is required. Enter and try again.',
                    "parameters": {"fieldName": "searchCriteria"},
                },
            )
        filters: dict[tuple[int, int], dict[str, str]] = {}
        sorts: dict[int, dict[str, str]] = {}
        for name, values in req.query.items():
            if m := _CRIT.match(name):
                filters.setdefault((int(m[1]), int(m[2])), {})[m[3]] = values[0]
            elif m := _SORT.match(name):
                sorts.setdefault(int(m[1]), {})[m[2]] = values[0]
        size = int(req.arg("searchCriteria[pageSize]", "20") or 20)
        page = int(req.arg("searchCriteria[currentPage]", "1") or 1)
        rows = self._rows(kind, table, filters)
        if sorts and sorts[0].get("field") == "updated_at":
            if (sorts[0].get("direction") or "ASC").upper() == "DESC":
                rows = rows[::-1]
        total = len(rows)
        last_page = max((total + size - 1) // size, 1)
        page = min(page, last_page)  # Magento's own behaviour past the end
        items = [table[i] for _, i in rows[(page - 1) * size : page * size]]
        criteria = {
            "filter_groups": [
                {"filters": [f for (g2, _), f in sorted(filters.items()) if g2 == g]}
                for g in sorted({g for g, _ in filters})
            ],
            "page_size": size,
            "current_page": page,
        }
        return Answer(200, {"items": items, "search_criteria": criteria, "total_count": total})

    def _rows(
        self, kind: str, table: dict[int, Any], filters: dict[tuple[int, int], dict[str, str]]
    ) -> list[tuple[str, int]]:
        index = self._index.get(kind)
        if index is None:
            index = sorted((r["updated_at"], i) for i, r in table.items())
            self._index[kind] = index
        rows = index
        for f in filters.values():
            if f.get("field") != "updated_at":
                raise ValueError(f"stand-in filters only on updated_at, not {f.get('field')}")
            value, cond = f.get("value", ""), f.get("condition_type", "eq")
            if cond == "gteq":
                rows = rows[bisect.bisect_left(rows, (value, -1)) :]
            elif cond == "gt":
                rows = rows[bisect.bisect_right(rows, (value, 1 << 62)) :]
            elif cond == "lteq":
                rows = rows[: bisect.bisect_right(rows, (value, 1 << 62))]
            else:
                rows = [r for r in rows if r[0] == value]
        return rows
