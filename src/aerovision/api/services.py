"""What the routes use: settings, database, queue and file store of one process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aerovision.config import Settings
from aerovision.jobs.queue import Queue, open_queue
from aerovision.store.db import Database
from aerovision.store.files import FileStore, open_store

if TYPE_CHECKING:
    from aerovision.libraries.service import Libraries


@dataclass
class Services:
    settings: Settings
    db: Database
    queue: Queue
    """Both interfaces: the routes use its :class:`~aerovision.jobs.queue.AdminQueue`
    side (enqueue, ping, depth); `serve` hands the same connection to its reaper, and
    a worker process to its :class:`~aerovision.jobs.worker.Worker` (a WorkQueue)."""
    store: FileStore
    _libraries: Libraries | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def libraries(self) -> Libraries:
        """The image libraries (their describing processes start on first use)."""
        with self._lock:
            if self._libraries is None:
                from aerovision.libraries.service import Libraries, embedder_spec

                self._libraries = Libraries(
                    self.db, self.store, index_folder=self.settings.data_dir / "index",
                    workers=self.settings.library_workers,
                    max_pixels=self.settings.max_image_pixels,
                    memory_mb=self.settings.task_memory_mb,
                    embedder=embedder_spec(self.settings),
                )
            return self._libraries

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
        if self._libraries is not None:
            self._libraries.close()
        self.queue.close()
        self.db.dispose()
