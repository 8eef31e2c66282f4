"""Webhooks the catalog's pipelines receive (one route per declared :class:`Webhook`), and the dead
letters of those that were signed but could not be processed (admin keys: they belong to no tenant)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, HTTPException, Request

from longhaul.api.deps import ADMIN_ERRORS, ERRORS, Admin, AppSettings, Letters, Service
from longhaul.models import DeadLetterPage, DeadLetterStatus, WebhookOutcome
from longhaul.server import webhooks
from longhaul.server.envelopes import NotFoundError
from longhaul.webhooks import SIGNATURE_HEADER, BadSignatureError, verify
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.pipeline import Webhook

DEAD_LETTERS = "/api/webhooks/dead-letters"


def router_for(catalog: Catalog) -> APIRouter:
    """The routes of ``catalog``'s webhooks and of their dead letters."""
    router = APIRouter(tags=["webhooks"])
    for hook in catalog.webhooks.values():
        router.add_api_route(
            f"/api/webhooks/{hook.source}",
            _receiver(hook),
            methods=["POST"],
            name=f"{hook.source}_webhook",
            summary=f"{hook.source.capitalize()} webhook",
            description=f"{hook.description} A signed webhook that cannot be processed is acknowledged "
            "and kept as a dead letter.",
            response_model=WebhookOutcome,
            response_model_exclude_none=True,
            responses={401: {"description": "Bad or missing signature"}, 503: ERRORS[503]},
        )
    router.add_api_route(
        DEAD_LETTERS,
        list_dead_letters,
        methods=["GET"],
        response_model=DeadLetterPage,
        responses=ADMIN_ERRORS,
    )
    router.add_api_route(
        DEAD_LETTERS + "/{letter_id}/redeliver",
        redeliver_dead_letter,
        methods=["POST"],
        response_model=WebhookOutcome,
        response_model_exclude_none=True,
        responses=ADMIN_ERRORS,
    )
    return router


def _receiver(hook: Webhook) -> Callable[..., Awaitable[WebhookOutcome]]:
    async def receive(
        request: Request, service: Service, settings: AppSettings, letters: Letters
    ) -> WebhookOutcome:
        body = await request.body()
        try:
            verify(hook.secret(settings), request.headers.get(SIGNATURE_HEADER), body)
        except BadSignatureError as error:
            raise HTTPException(status_code=401, detail=str(error)) from error
        return await webhooks.receive(service, letters, hook, body)

    return receive


async def list_dead_letters(
    letters: Letters, admin: Admin, status: DeadLetterStatus | None = DeadLetterStatus.DEAD
) -> DeadLetterPage:
    """Signed webhooks that could not be processed, newest first (admin keys: they belong to no
    tenant)."""
    return DeadLetterPage(dead_letters=await letters.list(status))


async def redeliver_dead_letter(
    letter_id: str, service: Service, letters: Letters, admin: Admin
) -> WebhookOutcome:
    """Process a dead letter's webhook again, as received (its signature was checked then). If it
    still cannot be processed it stays dead, with the new reason; the answer says so."""
    letter = await letters.get(letter_id)
    if letter is None:
        raise NotFoundError(f"no dead letter '{letter_id}'")
    hook = service.catalog.webhooks.get(letter.source)
    if hook is None:
        raise NotFoundError(f"no webhook '{letter.source}' in the catalog for dead letter '{letter_id}'")
    return await webhooks.redeliver(service, letters, hook, letter)
