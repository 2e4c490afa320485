"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aerovision.api.services import Services


async def get_services(request: Request) -> Services:
    """The process's services. ``async`` because it does no I/O: FastAPI runs a plain
    ``def`` dependency in its thread pool, a hop that cost each request ~0.2 ms."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
