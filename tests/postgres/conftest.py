"""A real PostgreSQL server for the connector tests: one per test session.

The fixture runs Debian's binaries (``/usr/lib/postgresql/<version>/bin``, the
``postgresql`` package; ``PG_BIN`` names another folder): ``initdb`` into a
fresh temporary directory, ``pg_ctl start`` on a free port of 127.0.0.1 with
the socket in that directory, and ``pg_ctl stop -m immediate`` at the end.
PostgreSQL refuses to run as root: as root, the server runs as ``nobody``
(every Debian system has it) and the directory is given to that user.  The
tests are skipped, saying why, when the binaries are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.actors.helpers import free_port

psycopg = pytest.importorskip("psycopg", reason="psycopg (the postgres extra) is not installed")


def _bin_dir() -> str | None:
    chosen = os.environ.get("PG_BIN")
    if chosen:
        return chosen if os.path.exists(os.path.join(chosen, "initdb")) else None
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0,
    )
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


@attrs.frozen
class PostgresServer:
    """A running test server: connect with :attr:`dsn` (user ``postgres``, trust auth)."""

    host: str
    port: int
    dbname: str = "postgres"
    user: str = "postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` in its own autocommit connection; the rows, if it returns any."""
        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description is not None else []


def _run_as(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql, or PG_BIN)")
    owner = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
    base = tempfile.mkdtemp(prefix="partita-pg-")
    data, sockets = os.path.join(base, "data"), os.path.join(base, "sock")
    os.mkdir(sockets)
    if owner is not None:
        for path in (base, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    as_owner = _run_as(owner)
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    done = subprocess.run(
        [f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--no-sync"],
        cwd=base, env=env, capture_output=True, text=True, check=False, **as_owner,
    )  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed:\n{done.stdout}{done.stderr}")
    port = free_port()
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
    )
    log = os.path.join(base, "server.log")
    started = subprocess.run(
        [f"{bin_dir}/pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "-t", "30", "start"],
        cwd=base, env=env, capture_output=True, text=True, check=False, **as_owner,
    )  # fmt: skip
    if started.returncode != 0:
        text = Path(log).read_text() if os.path.exists(log) else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed:\n{started.stdout}{started.stderr}{text}")
    try:
        yield PostgresServer("127.0.0.1", port)
    finally:
        subprocess.run(
            [f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            cwd=base, env=env, capture_output=True, check=False, **as_owner,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
