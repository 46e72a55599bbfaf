"""`provisioner worker`: one procrastinate worker process running the fleet's jobs.

A worker killed outright (SIGKILL, a host lost) stops sending heartbeats; every other
worker looks for such stalled jobs every few seconds and queues them again, so another
worker resumes the apply (the executor's in-flight marks prevent a second create).
SIGTERM or Ctrl-C: no new job starts; a running apply finishes the items in flight,
records them, and its job is queued again for the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from .jobs import ensure_schema, make_app

log = logging.getLogger(__name__)


async def _retry_stalled(app, stalled_after: float) -> None:
    while True:
        await asyncio.sleep(max(1.0, stalled_after / 3))
        try:
            for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
                log.warning("job %s (%s) stalled: its worker stopped sending heartbeats; queued again",
                            job.id, job.call_string)
                await app.job_manager.retry_job(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # another worker retried it first, or the DB blinked: next round
            log.debug("stalled-job check: %s", exc)


def run_worker(url: str, concurrency: int, stalled_after: float) -> None:
    ensure_schema(url)
    app = make_app(url, max_size=concurrency + 4)

    async def main() -> None:
        async with app.open_async():
            watcher = asyncio.create_task(_retry_stalled(app, stalled_after))
            try:
                await app.run_worker_async(
                    name=f"{socket.gethostname()}:{os.getpid()}", concurrency=concurrency,
                    update_heartbeat_interval=max(0.5, stalled_after / 6),
                    stalled_worker_timeout=stalled_after, shutdown_graceful_timeout=0,
                    fetch_job_polling_interval=2.0, abort_job_polling_interval=2.0,
                    install_signal_handlers=True)
            finally:
                watcher.cancel()

    asyncio.run(main())
