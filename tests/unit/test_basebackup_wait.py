"""Waiting for the primary: causes named, bounded with backoff, one line per attempt."""

from __future__ import annotations

import psycopg
import pytest

from entrypoint.apply import basebackup
from entrypoint.errors import RuntimeFailure
from entrypoint.settings_replica import parse

pytestmark = pytest.mark.unit

SETTINGS = parse({"PRIMARY_HOST": "db1", "PRIMARY_PORT": "5433", "PG_REPLICATION_PASSWORD": "pw",
                  "PRIMARY_WAIT_TIMEOUT": "30"})


@pytest.mark.parametrize(("message", "expected"), [
    ("failed to resolve host 'db1': [Errno -2] Name or service not known", "DNS"),
    ('could not translate host name "db1" to address: Temporary failure in name resolution', "DNS"),
    ('connection to server at "10.0.0.5", port 5433 failed: Connection refused', "refused"),
    ("connection to server at ... failed: timeout expired", "no answer"),
    ('FATAL:  password authentication failed for user "replicator"', "PG_REPLICATION_PASSWORD"),
    ('FATAL:  no pg_hba.conf entry for replication connection from host "10.0.0.9"', "pg_hba.conf"),
    ("FATAL:  must be superuser or replication role to start walsender", "REPLICATION attribute"),
    ('ERROR:  replication slot "replica1_slot" does not exist', "slot is missing"),
    ('ERROR:  replication slot "replica1_slot" is active for PID 77', "in use by another standby"),
    ("FATAL:  the database system is starting up", "starting up"),
    ("something nobody has seen\nsecond line", "second line"),
])
def test_causes_are_named(message: str, expected: str) -> None:
    assert expected in basebackup.describe_failure(message)


def test_backoff_grows_and_is_capped() -> None:
    assert [basebackup.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 10, 10, 10]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_gives_up_after_the_timeout_with_host_port_and_cause(capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()

    def refused(_s: object) -> basebackup.PrimaryInfo:
        clock.now += 0.01
        raise psycopg.OperationalError('connection to server at "db1", port 5433 failed: Connection refused')

    with pytest.raises(RuntimeFailure) as err:
        basebackup.wait_for_primary(SETTINGS, clock=clock, sleep=clock.sleep, attempt_once=refused)
    message = str(err.value)
    assert "db1:5433" in message
    assert "connection refused" in message
    assert "PRIMARY_WAIT_TIMEOUT=30" in message
    assert 29 <= clock.now <= 31  # bounded by the timeout, not by the attempt count
    assert clock.sleeps[:5] == [1, 2, 4, 8, 10]
    out = capsys.readouterr().out.splitlines()
    attempts = [line for line in out if "waiting for primary db1:5433" in line]
    assert len(attempts) == len(clock.sleeps)  # one line per failed attempt
    assert "pw" not in message


def test_returns_once_the_primary_answers() -> None:
    clock = FakeClock()
    answers: list[BaseException | basebackup.PrimaryInfo] = [
        psycopg.OperationalError("the database system is starting up"),
        basebackup.PrimaryInfo(server_version=150018, system_identifier="1", slot_exists=True),
    ]

    def attempt(_s: object) -> basebackup.PrimaryInfo:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    info = basebackup.wait_for_primary(SETTINGS, clock=clock, sleep=clock.sleep, attempt_once=attempt)
    assert info.slot_exists is True
    assert clock.sleeps == [1]


def test_progress_lines_every_ten_percent_and_errors_kept(capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    progress = basebackup._ProgressLog(clock)
    for percent in range(0, 101, 2):
        progress.feed(f"{percent * 10240}/1024000 kB ({percent}%), 0/1 tablespace")
    progress.feed("pg_basebackup: error: could not send replication command: server closed the connection")
    out = capsys.readouterr().out.splitlines()
    cloning = [line for line in out if "cloning:" in line]
    assert len(cloning) == 11  # 0 %, 10 %, ..., 100 %
    assert cloning[-1].endswith("cloning: 1000 of 1000 MB (100%)")
    assert progress.messages == ["pg_basebackup: error: could not send replication command: server closed "
                                 "the connection"]


def test_progress_line_at_least_every_ten_seconds_when_slow(capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    progress = basebackup._ProgressLog(clock)
    for _ in range(3):
        progress.feed("1024/1024000 kB (0%), 0/1 tablespace")
        clock.now += 11
    assert sum("cloning:" in line for line in capsys.readouterr().out.splitlines()) == 3
