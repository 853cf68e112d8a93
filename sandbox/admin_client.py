"""Client for the sandbox's admin API (fault injection), used by the CLI and the tests."""

from __future__ import annotations

from typing import Any

from activities.http_adapters import HttpService


class SandboxAdmin:
    def __init__(self, service: HttpService) -> None:
        self._service = service

    async def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._service.call("GET", "/_sandbox/faults")
        return result

    async def set_faults(self, assignments: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = await self._service.call(
            "PUT", "/_sandbox/faults", json=assignments
        )
        return result

    async def injected(self, system: str, kind: str) -> int:
        """How many times a fault has fired since the sandbox started."""
        counts: dict[str, dict[str, int]] = await self._service.call("GET", "/_sandbox/injected")
        return counts.get(system, {}).get(kind, 0)

    async def clear_faults(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._service.call("DELETE", "/_sandbox/faults")
        return result

    async def inbox(self, refund_id: str | None = None) -> list[dict[str, Any]]:
        """What the customer inbox received (each event once, with its copy count)."""
        query = f"?refund_id={refund_id}" if refund_id else ""
        body: dict[str, Any] = await self._service.call("GET", f"/_sandbox/inbox{query}")
        rows: list[dict[str, Any]] = body["data"]
        return rows

    async def reverse(self, provider_refund_id: str) -> None:
        """Have the provider take back a refund it paid, now (as a bank returning it)."""
        await self._service.call("POST", f"/_sandbox/refunds/{provider_refund_id}/reverse")
