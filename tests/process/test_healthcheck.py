"""`aza-pg healthcheck` exit codes against real servers: up, down, wrong role, in recovery, custom DB."""

from __future__ import annotations

import pytest

from entrypoint.flows.healthcheck import DOWN, UP, WRONG_ROLE
from tests.process.pgharness import Instance, template_pgdata

pytestmark = pytest.mark.process


def test_up_down_and_wrong_role() -> None:
    with Instance.create() as pg:
        pg.copy_pgdata_from(template_pgdata())
        pg.start()
        ok = pg.healthcheck()
        assert ok.returncode == UP, ok.output
        assert "ok: accepting queries as single" in ok.output
        assert pg.healthcheck({"POSTGRES_ROLE": "primary"}).returncode == UP
        wrong = pg.healthcheck({"POSTGRES_ROLE": "replica"})
        assert wrong.returncode == WRONG_ROLE, wrong.output
        assert pg.healthcheck({"POSTGRES_DB": "no_such_db"}).returncode == DOWN
        pg.stop()
        down = pg.healthcheck()
        assert down.returncode == DOWN, down.output
        assert UP != DOWN != WRONG_ROLE != UP


def test_custom_user_and_database() -> None:
    env = {"POSTGRES_USER": "appowner", "POSTGRES_DB": "appdb"}
    with Instance.create(env) as pg:
        pg.start()
        assert pg.query("SELECT current_database(), current_user") == [("appdb", "appowner")]
        result = pg.healthcheck()
        assert result.returncode == UP, result.output
        assert "database appdb" in result.output


def test_server_in_recovery_is_healthy_only_as_replica() -> None:
    with Instance.create() as pg:
        pg.copy_pgdata_from(template_pgdata())
        (pg.pgdata / "standby.signal").write_text("")  # a standby without a primary stays in recovery
        pg.start()
        assert pg.query("SELECT pg_is_in_recovery()") == [(True,)]
        assert pg.healthcheck({"POSTGRES_ROLE": "replica"}).returncode == UP
        wrong = pg.healthcheck()
        assert wrong.returncode == WRONG_ROLE
        assert "wrong role" in wrong.output
