"""The nightly sync: a cron schedule of reconcile cycles, one run at a time.

A cycle plans; it applies only when no target is blocked and
`schedule.auto_apply` is on; otherwise the plan waits in the state DB for a
person, who is notified. SIGTERM or Ctrl-C lets the items being applied
finish, leaves the rest pending (the next apply of that plan resumes) and
stops; see provisioner.stopping.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from . import flow, notify
from .errors import ConfigError, ProvisionerError
from .model import APPLICABLE_OPS, FAILED, STALE
from .reports import plan_html
from .reports.common import PERSON_OPS
from .runlock import RUN_LOCK, LockHeld, describe_holder
from .stopping import StopFlag

log = logging.getLogger(__name__)

# exit codes of one cycle, the same meanings as the CLI's
OK, FAILED_ITEMS, BLOCKED = 0, 1, 3


def make_trigger(schedule) -> CronTrigger:
    return CronTrigger.from_crontab(schedule.cron, timezone=ZoneInfo(schedule.timezone))


def next_runs(schedule, now: datetime, count: int = 1) -> list[datetime]:
    """The next `count` fire times after `now` (an aware datetime), in the schedule's zone."""
    trigger, out, previous = make_trigger(schedule), [], None
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        out.append(fire)
        previous, now = fire, fire
    return out


@dataclass
class Cycle:
    plan_id: str
    event: str | None       # failed | blocked | review | manual | None (nothing needs a person)
    exit_code: int
    applied: bool = False
    stopped: bool = False


def run_cycle(settings, state, *, should_stop: Callable[[], bool] = lambda: False,
              wait_seconds: float | None = None) -> Cycle:
    """One scheduled reconcile under the run lock; notifies when a person is needed."""
    wait = settings.lock.wait_seconds if wait_seconds is None else wait_seconds
    with state.lock(RUN_LOCK, describe_holder("schedule"), wait, settings.lock.lease_seconds):
        with flow.open_targets(settings) as handles:
            outcome = flow.build_plan(settings, state, handles, trigger="schedule")
            cycle = _decide_and_apply(settings, state, handles, outcome, should_stop)
    log.info("scheduled cycle: plan %s, %s", cycle.plan_id, cycle.event or "nothing needs review")
    return cycle


def _decide_and_apply(settings, state, handles, outcome, should_stop) -> Cycle:
    plan = outcome.plan
    changes = any(i.op in APPLICABLE_OPS for i in plan.items)
    # manual and conflict items are never applied: only a person can settle them
    for_a_person = any(i.op in PERSON_OPS for i in plan.items)
    if plan.status == "blocked" or outcome.unreadable:
        _notify(settings, "blocked", outcome.run_id, plan, flow.plan_counts(plan), [], outcome.unreadable)
        return Cycle(plan.plan_id, "blocked", BLOCKED)
    if not changes:
        if for_a_person:
            _notify(settings, "manual", outcome.run_id, plan, flow.plan_counts(plan), [])
            return Cycle(plan.plan_id, "manual", OK)
        return Cycle(plan.plan_id, None, OK)
    if not settings.schedule.auto_apply:
        _notify(settings, "review", outcome.run_id, plan, flow.plan_counts(plan), [])
        return Cycle(plan.plan_id, "review", OK)
    result = flow.run_apply(settings, state, handles, plan, trigger="schedule", should_stop=should_stop)
    if result.stopped:
        log.warning("stopped before plan %s was fully applied; the rest stays pending "
                    "(resume with: provisioner apply %s)", plan.plan_id, plan.plan_id)
    stored = state.load_plan(plan.plan_id)  # with each item's outcome, for the report
    if result.failed or result.stale:
        failures = [{"target": i.target, "op": i.op, "identity": i.identity, "status": i.status,
                     "error": i.error} for i in stored.items if i.status in (FAILED, STALE)]
        _notify(settings, "failed", result.run_id, stored, result.counts, failures)
        return Cycle(plan.plan_id, "failed", FAILED_ITEMS, applied=True, stopped=result.stopped)
    if for_a_person:
        _notify(settings, "manual", result.run_id, stored, result.counts, [])
        return Cycle(plan.plan_id, "manual", OK, applied=True, stopped=result.stopped)
    return Cycle(plan.plan_id, None, OK, applied=True, stopped=result.stopped)


def _notify(settings, event, run_id, plan, counts, failures, unreadable=None) -> None:
    try:
        doc = notify.summary(event, run_id=run_id, plan=plan, counts=counts, failures=failures,
                             unreadable=unreadable)
        # the HTML report is only ever mailed: no need to build it without a mail server
        report = plan_html(plan) if settings.notify.smtp is not None else None
        notify.deliver(settings.notify, doc, report_html=report)
    except Exception:  # telling people must never fail the run it reports on
        log.exception("notify: could not send the %s notification", event)


class NightlyJob:
    """One scheduled cycle, the config read afresh each time: an edit (auto_apply, a target,
    the cron itself) takes effect at the next cycle, without restarting the scheduler."""

    def __init__(self, config_path, settings, state, stop: StopFlag, scheduler=None):
        self.config_path, self.settings, self.state, self.stop = config_path, settings, state, stop
        self.scheduler = scheduler   # to move the job when the cron changed

    def __call__(self) -> Cycle | None:
        if self.stop() or not self._reload():
            return None
        try:
            return run_cycle(self.settings, self.state, should_stop=self.stop)
        except LockHeld as exc:
            log.warning("scheduled cycle skipped: %s", exc)
        except ProvisionerError as exc:  # e.g. an unreadable source: the next cycle tries again
            log.error("scheduled cycle failed: %s", exc)
        except Exception:
            log.exception("scheduled cycle failed unexpectedly")
        return None

    def _reload(self) -> bool:
        from .config import load_config
        from .state import StateDB
        try:
            settings = load_config(self.config_path)
        except ConfigError as exc:
            log.error("scheduled cycle skipped: the config has a mistake (the next cycle reads it "
                      "again): %s", exc)
            return False
        if settings.state.url != self.settings.state.url:
            self.state.close()
            self.state = StateDB(settings.state.url)
        old, new = self.settings.schedule, settings.schedule
        self.settings = settings
        if (old.cron, old.timezone) != (new.cron, new.timezone) and self.scheduler is not None:
            self.scheduler.reschedule_job("reconcile", trigger=make_trigger(new))
            log.info("schedule changed to cron '%s' (%s)", new.cron, new.timezone)
        return True


def serve(config_path, settings, state, stop: StopFlag) -> None:
    """Run cycles on the cron schedule until `stop` is set; returns once the current cycle ended."""
    zone = ZoneInfo(settings.schedule.timezone)
    scheduler = BlockingScheduler(timezone=zone)
    busy = threading.Lock()
    cycle = NightlyJob(config_path, settings, state, stop, scheduler)

    def job() -> None:
        with busy:
            cycle()
        log.info("next run at %s", _next(scheduler))

    scheduler.add_job(job, make_trigger(settings.schedule), id="reconcile", max_instances=1,
                      coalesce=True, misfire_grace_time=3600)
    stop.on_set.append(lambda: scheduler.shutdown(wait=False))
    if not stop():
        scheduler.start()
    with busy:  # a cycle in progress finishes its current items first
        pass
    log.info("scheduler stopped")


def _next(scheduler) -> str:
    job = scheduler.get_job("reconcile")
    return job.next_run_time.isoformat() if job and job.next_run_time else "none"
