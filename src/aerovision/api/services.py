"""What the routes use: settings, database, queue and file store of one process."""

from __future__ import annotations

from dataclasses import dataclass

from aerovision.config import Settings
from aerovision.jobs.queue import Queue, open_queue
from aerovision.store.db import Database
from aerovision.store.files import FileStore, open_store


@dataclass
class Services:
    settings: Settings
    db: Database
    queue: Queue
    """Both interfaces: the routes use its :class:`~aerovision.jobs.queue.AdminQueue`
    side (enqueue, ping, depth); `serve` hands the same connection to its reaper, and
    a worker process to its :class:`~aerovision.jobs.worker.Worker` (a WorkQueue)."""
    store: FileStore

    @classmethod
    def open(cls, settings: Settings) -> Services:
        db = Database(settings.db_url)
        return cls(
            settings=settings,
            db=db,
            queue=open_queue(
                settings.effective_queue_url, db, prefix=settings.queue_prefix,
                lease_s=settings.lease_s,
            ),
            store=open_store(
                settings.storage_url,
                settings.data_dir,
                endpoint_url=settings.s3_endpoint_url,
                access_key_id=settings.s3_access_key_id,
                secret_access_key=settings.s3_secret_access_key,
                region=settings.s3_region,
            ),
        )

    def close(self) -> None:
        self.queue.close()
        self.db.dispose()
