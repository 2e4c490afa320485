"""/api/v1/webhooks: register, list, delete receivers; see their deliveries."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Response

from aerovision import netpolicy
from aerovision.api.auth import CallerDep
from aerovision.api.deps import ServicesDep
from aerovision.api.errors import field_error
from aerovision.api.schemas import DeliveryOut, Message, WebhookIn, WebhookOut
from aerovision.store import webhooks as webhook_store
from aerovision.store.models import DeliveryStatus

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Message, "description": "Unknown webhook id."}
}

_WEBHOOK_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
"""What a webhook id can look like (wh_ + hex); anything else is unknown without a query."""


def _out(hook: webhook_store.Webhook) -> WebhookOut:
    return WebhookOut(id=hook.id, url=netpolicy.mask_url(hook.url), created_at=hook.created_at)


def _known(webhook_id: str) -> str:
    if not _WEBHOOK_ID.match(webhook_id):
        raise HTTPException(status_code=404, detail="Webhook not found")
    return webhook_id


@router.post(
    "",
    status_code=201,
    summary="Register a webhook",
    responses={400: {"model": Message, "description": "The body is not JSON (or not UTF-8)."}},
)
def create_webhook(body: WebhookIn, services: ServicesDep, caller: CallerDep) -> WebhookOut:
    """Every task of the account that ends (done or error) from now on is POSTed to `url`.

    The URL's host is resolved (nothing is connected to): a host that is, or
    resolves to, a loopback, link-local, private, reserved or cloud metadata
    address is refused with 422, unless the server allows private addresses
    (AEROVISION_WEBHOOK_ALLOW_PRIVATE=1; metadata addresses stay refused). A host
    that does not resolve yet is accepted; every delivery checks again."""
    allow_private = services.settings.webhook_allow_private
    try:
        netpolicy.check_url(body.url, allow_private=allow_private)
    except netpolicy.AddressRefused as exc:
        hint = (
            ""
            if exc.always or allow_private
            else (
                "; webhooks may reach public addresses only (the server allows private ones "
                "with AEROVISION_WEBHOOK_ALLOW_PRIVATE=1)"
            )
        )
        raise field_error(
            "url", f"url refused: {exc}{hint}", netpolicy.mask_url(body.url)
        ) from None
    except netpolicy.Unresolvable:
        pass  # may resolve later (or only where the notifier runs): checked at each send
    return _out(webhook_store.create_webhook(
        services.db, caller.owner(read=False), body.url, body.secret
    ))


@router.get("", summary="List webhooks")
def list_webhooks(services: ServicesDep, caller: CallerDep) -> list[WebhookOut]:
    """The account's webhooks (secrets are never shown)."""
    return [_out(h) for h in webhook_store.list_webhooks(services.db, caller.owner(read=True))]


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook", responses=NOT_FOUND)
def delete_webhook(webhook_id: str, services: ServicesDep, caller: CallerDep) -> Response:
    """Stop notifying this receiver; its pending deliveries are dropped."""
    owner = caller.owner(read=False)
    if not webhook_store.delete_webhook(services.db, owner, _known(webhook_id)):
        raise HTTPException(status_code=404, detail="Webhook not found")
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", summary="Recent deliveries", responses=NOT_FOUND)
def list_deliveries(
    webhook_id: str, services: ServicesDep, caller: CallerDep
) -> list[DeliveryOut]:
    """The 50 most recent deliveries to this webhook, newest first."""
    owner = caller.owner(read=True)
    if webhook_store.get_webhook(services.db, _known(webhook_id), owner) is None:
        raise HTTPException(status_code=404, detail="Webhook not found")
    return [
        DeliveryOut(
            id=d.id,
            task_uid=d.task_uid,
            event=d.event,
            status=d.status.value,
            attempts=d.attempts,
            response_code=d.response_code,
            error=d.error,
            next_attempt_at=d.next_attempt_at if d.status == DeliveryStatus.PENDING else None,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )
        for d in webhook_store.list_deliveries(services.db, webhook_id)
    ]
