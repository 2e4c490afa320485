"""/api/v1/webhooks: register, list, delete receivers; see their deliveries."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from aerovision.api.deps import ServicesDep
from aerovision.api.schemas import DeliveryOut, Message, WebhookIn, WebhookOut
from aerovision.store import webhooks as webhook_store
from aerovision.store.models import DeliveryStatus

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

NOT_FOUND = {404: {"model": Message, "description": "Unknown webhook id."}}


def _out(hook: webhook_store.Webhook) -> WebhookOut:
    return WebhookOut(id=hook.id, url=hook.url, created_at=hook.created_at)


@router.post(
    "",
    status_code=201,
    summary="Register a webhook",
    responses={400: {"model": Message, "description": "The body is not JSON (or not UTF-8)."}},
)
def create_webhook(body: WebhookIn, services: ServicesDep) -> WebhookOut:
    """Every task that ends (done or error) from now on is POSTed to `url`."""
    return _out(webhook_store.create_webhook(services.db, body.url, body.secret))


@router.get("", summary="List webhooks")
def list_webhooks(services: ServicesDep) -> list[WebhookOut]:
    """All registered webhooks (secrets are never shown)."""
    return [_out(h) for h in webhook_store.list_webhooks(services.db)]


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook", responses=NOT_FOUND)
def delete_webhook(webhook_id: str, services: ServicesDep) -> Response:
    """Stop notifying this receiver; its pending deliveries are dropped."""
    if not webhook_store.delete_webhook(services.db, webhook_id):
        raise HTTPException(status_code=404, detail="Webhook not found")
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", summary="Recent deliveries", responses=NOT_FOUND)
def list_deliveries(webhook_id: str, services: ServicesDep) -> list[DeliveryOut]:
    """The 50 most recent deliveries to this webhook, newest first."""
    if webhook_store.get_webhook(services.db, webhook_id) is None:
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
