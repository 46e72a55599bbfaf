"""Cron parsing and next-run computation with injected times; schedule config errors."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from provisioner.config import ScheduleSettings, load_config
from provisioner.errors import ConfigError
from provisioner.scheduler import next_runs

BERLIN = ZoneInfo("Europe/Berlin")


def test_nightly_runs_at_two_in_the_schedules_zone():
    schedule = ScheduleSettings(cron="0 2 * * *", timezone="Europe/Berlin")
    now = datetime(2026, 3, 10, 14, 30, tzinfo=timezone.utc)
    runs = next_runs(schedule, now, 3)
    assert [r.astimezone(BERLIN).strftime("%m-%d %H:%M") for r in runs] == ["03-11 02:00", "03-12 02:00",
                                                                              "03-13 02:00"]
    assert runs[0].astimezone(timezone.utc) == datetime(2026, 3, 11, 1, 0, tzinfo=timezone.utc)


def test_the_run_follows_local_time_across_the_summer_time_change():
    schedule = ScheduleSettings(cron="30 3 * * *", timezone="Europe/Berlin")
    runs = next_runs(schedule, datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc), 2)
    # 03:30 Berlin is 02:30 UTC in winter and 01:30 UTC after the switch on 29 March
    assert [r.astimezone(timezone.utc).strftime("%d %H:%M") for r in runs] == ["29 01:30", "30 01:30"]


def test_weekday_ranges_and_a_now_exactly_on_a_fire_time():
    schedule = ScheduleSettings(cron="15 6 * * mon-fri", timezone="UTC")
    friday = datetime(2026, 11, 27, 6, 15, tzinfo=timezone.utc)
    runs = next_runs(schedule, friday, 2)
    assert [r.strftime("%a %d %H:%M") for r in runs] == ["Fri 27 06:15", "Mon 30 06:15"]


@pytest.mark.parametrize("key,value,words", [
    ("cron", "0 25 * * *", "schedule.cron: not a valid cron expression '0 25 * * *'"),
    ("cron", "every night", "schedule.cron: not a valid cron expression"),
    ("timezone", "Europe/Atlantis", "schedule.timezone: unknown time zone 'Europe/Atlantis'"),
    ("auto_apply", "yes", "schedule.auto_apply: must be true or false"),
])
def test_a_bad_schedule_is_one_sentence_naming_the_key(tmp_path, key, value, words):
    (tmp_path / "config.toml").write_text(f"""
[source]
type = "csv"
path = "people.csv"
key = "id"
[targets.t]
type = "scim"
base_url = "http://127.0.0.1:9"
token = "env:PATH"
mapping = "m.toml"
[schedule]
{key} = "{value}"
""", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "config.toml")
    assert str(error.value).startswith(f"{tmp_path / 'config.toml'}: {words}")
    assert "\n" not in str(error.value)
