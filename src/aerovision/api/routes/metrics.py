"""GET /metrics: Prometheus text, computed from the database at each scrape.

Counts come from the database (the truth shared by every process and
machine), so any API replica answers the same and nothing is lost when a
worker restarts.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from aerovision.api.auth import CallerDep
from aerovision.api.deps import ServicesDep
from aerovision.api.routes.system import WORKER_ALIVE_WITHIN_S
from aerovision.api.services import Services
from aerovision.store import tasks as task_store
from aerovision.store import webhooks as webhook_store
from aerovision.store import workers as worker_store
from aerovision.store.models import TaskStatus
from aerovision.store.scope import Owner

router = APIRouter(tags=["system"])

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Upper bounds (seconds) of the task duration histogram."""


class _ServiceCollector(Collector):
    def __init__(self, services: Services, owner: Owner) -> None:
        self.services = services
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        db = self.services.db
        tasks = GaugeMetricFamily(
            "aerovision_tasks", "Tasks by tool and status.", labels=["tool", "status"]
        )
        counts = task_store.count_by_tool_and_status(db, self.owner)
        for tool in sorted({tool for tool, _ in counts}):
            for status in TaskStatus:
                tasks.add_metric([tool, status.value], counts.get((tool, status.value), 0))
        yield tasks

        depth = GaugeMetricFamily("aerovision_queue_depth", "Tasks waiting for a worker.")
        depth.add_metric([], self.services.queue.depth())
        yield depth

        workers = GaugeMetricFamily(
            "aerovision_workers_alive", "Workers that reported in during the last 30 s."
        )
        workers.add_metric([], worker_store.alive_count(db, WORKER_ALIVE_WITHIN_S))
        yield workers

        durations = HistogramMetricFamily(
            "aerovision_task_duration_seconds",
            "Time of the last attempt of finished tasks, by tool.",
            labels=["tool"],
        )
        for tool, (cumulative, total, total_s) in sorted(
            task_store.duration_histogram(db, self.owner, DURATION_BUCKETS).items()
        ):
            buckets = [(str(b), c) for b, c in zip(DURATION_BUCKETS, cumulative, strict=True)]
            durations.add_metric([tool], [*buckets, ("+Inf", total)], total_s)
        yield durations

        deliveries = GaugeMetricFamily(
            "aerovision_webhook_deliveries", "Webhook deliveries by status.", labels=["status"]
        )
        for delivery_status, n in webhook_store.count_by_status(db, self.owner).items():
            deliveries.add_metric([delivery_status], n)
        yield deliveries


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(services: ServicesDep, caller: CallerDep) -> Response:
    """Tasks by tool and status, queue depth, live workers, task durations, deliveries.

    Tasks, durations and deliveries are the caller's account's (every account's for a
    token of `visibility_area: all`); the queue and the workers are the deployment's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ServiceCollector(services, caller.owner(read=True)))
    return Response(
        generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
