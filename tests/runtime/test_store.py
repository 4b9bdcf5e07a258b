"""Checkpoint stores: the interface's rules on every store, and the SQLite file's guarantees."""

from __future__ import annotations

import doctest
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from partita.runtime import (
    Checkpoint,
    CheckpointCorrupt,
    CheckpointError,
    CheckpointStore,
    MemoryCheckpointStore,
    SqliteCheckpointStore,
    _sqlite_store,
    _store,
    encode_state,
    open_sqlite_store,
)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CheckpointStore]:
    if request.param == "memory":
        yield MemoryCheckpointStore(keep=2)
    else:
        async with open_sqlite_store(tmp_path / "job.db", job="job", keep=2) as opened:
            yield opened


# ------------------------------------------------------------------ every store


async def test_nothing_is_committed_at_first(store: CheckpointStore) -> None:
    assert await store.latest() is None
    assert await store.retained() == []
    assert store.keep == 2


async def test_commit_makes_the_staged_parts_the_latest(store: CheckpointStore) -> None:
    await store.stage(1, "source", b"offset 10")
    await store.stage(1, "partition-0", b"groups")
    await store.stage(1, "source", b"offset 12")  # staged again: replaced
    assert await store.latest() is None  # staged parts are invisible
    await store.commit(1, b"meta-1")
    assert await store.latest() == Checkpoint(
        1, b"meta-1", {"source": b"offset 12", "partition-0": b"groups"}
    )


async def test_a_commit_holds_only_its_own_parts(store: CheckpointStore) -> None:
    await store.stage(1, "a", b"1a")
    await store.stage(2, "a", b"2a")  # abandoned: 3 commits first
    await store.stage(3, "b", b"3b")
    await store.stage(4, "a", b"4a")  # staged ahead: stays staged
    await store.commit(3, b"m3")
    assert await store.latest() == Checkpoint(3, b"m3", {"b": b"3b"})
    await store.commit(4, b"m4")
    assert await store.latest() == Checkpoint(4, b"m4", {"a": b"4a"})
    await store.commit(5, b"m5")  # nothing staged: a checkpoint of the manifest alone
    assert await store.latest() == Checkpoint(5, b"m5", {})


async def test_old_checkpoints_are_pruned_to_keep(store: CheckpointStore) -> None:
    for n in range(1, 6):
        await store.stage(n, "a", b"%d" % n)
        await store.commit(n, b"")
        assert await store.retained() == list(range(max(1, n - 1), n + 1))
    latest = await store.latest()
    assert latest is not None
    assert latest.parts == {"a": b"5"}


async def test_ids_must_increase(store: CheckpointStore) -> None:
    await store.commit(3, b"")
    with pytest.raises(
        ValueError, match=r"^checkpoint 3 is not after the latest committed checkpoint 3$"
    ):
        await store.commit(3, b"")
    with pytest.raises(ValueError, match="checkpoint 2 is not after"):
        await store.stage(2, "a", b"")
    with pytest.raises(ValueError, match=r"^checkpoint ids are >= 0, not -1$"):
        await store.commit(-1, b"")
    with pytest.raises(ValueError, match=r"^an actor's name must not be empty$"):
        await store.stage(4, "", b"")
    await store.discard_all()  # after --fresh, ids start again
    await store.commit(1, b"")


async def test_discard_all_forgets_committed_and_staged(store: CheckpointStore) -> None:
    await store.stage(1, "a", b"x")
    await store.commit(1, b"")
    await store.stage(2, "a", b"y")
    await store.discard_all()
    assert await store.latest() is None
    assert await store.retained() == []
    await store.commit(2, b"")
    assert await store.latest() == Checkpoint(2, b"", {})  # the part staged before is gone


async def test_a_closed_store_says_so(store: CheckpointStore) -> None:
    await store.aclose()
    await store.aclose()  # idempotent
    with pytest.raises(trio.ClosedResourceError):
        await store.latest()
    with pytest.raises(trio.ClosedResourceError):
        await store.stage(1, "a", b"")


async def test_a_commit_cancelled_before_it_starts_commits_nothing(store: CheckpointStore) -> None:
    await store.stage(1, "a", b"x")
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.commit(1, b"")
    assert await store.latest() is None
    await store.commit(1, b"")
    assert await store.latest() == Checkpoint(1, b"", {"a": b"x"})


def test_keep_is_at_least_one() -> None:
    with pytest.raises(ValueError, match=r"^keep must be at least 1, not 0$"):
        MemoryCheckpointStore(keep=0)


def test_a_checkpoint_shows_sizes_not_blobs_and_cannot_be_changed() -> None:
    checkpoint = Checkpoint(7, b"m", {"a": b"x" * 1000})
    assert repr(checkpoint) == "Checkpoint(id=7, meta=b'm', parts={'a': <1000 bytes>})"
    with pytest.raises(TypeError):
        checkpoint.parts["a"] = b""  # type: ignore[index]


# ------------------------------------------------------------------ the SQLite file


async def test_the_store_survives_reopening_and_drops_staged_parts(tmp_path: Path) -> None:
    path = tmp_path / "job.db"
    async with open_sqlite_store(path, job="job") as store:
        await store.stage(1, "a", b"1")
        await store.commit(1, b"m1")
        await store.stage(2, "a", b"2")  # a crash before the commit of 2
    assert _raw_parts(path) == [(1, "a"), (2, "a")]
    async with open_sqlite_store(path, job="job") as store:
        assert await store.latest() == Checkpoint(1, b"m1", {"a": b"1"})
    assert _raw_parts(path) == [(1, "a")]  # dropped when opened
    async with open_sqlite_store(path, job="job") as store:
        await store.commit(2, b"m2")  # what was staged before the crash is not in it
        assert await store.latest() == Checkpoint(2, b"m2", {})


async def test_the_file_records_its_job_and_refuses_another(tmp_path: Path) -> None:
    path = tmp_path / "job.db"
    async with open_sqlite_store(path, job="wordcount"):
        pass
    with pytest.raises(
        CheckpointError, match=r"holds the checkpoints of job 'wordcount', not 'other'$"
    ) as caught:
        async with open_sqlite_store(path, job="other"):
            pass
    assert not isinstance(caught.value, CheckpointCorrupt)
    assert str(caught.value).startswith(str(path))


async def test_a_file_that_is_not_a_database_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "job.db"
    path.write_bytes(b'{"not": "a database"}\n' * 100)
    with pytest.raises(
        CheckpointCorrupt,
        match=r"job\.db: not a readable checkpoint store \(file is not a database\)",
    ):
        async with open_sqlite_store(path, job="job"):
            pass
    assert path.read_bytes() == b'{"not": "a database"}\n' * 100  # nothing reset


async def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(
        CheckpointCorrupt,
        match="is a database of another application, not a partita checkpoint store",
    ):
        async with open_sqlite_store(path, job="job"):
            pass
    db = sqlite3.connect(path)
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("customers",)]
    db.close()


async def test_a_truncated_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "job.db"
    async with open_sqlite_store(path, job="job") as store:
        for n in range(1, 4):
            for actor in range(20):
                await store.stage(n, f"p{actor}", os.urandom(3000))
            await store.commit(n, b"m")
    size = path.stat().st_size
    assert size > 20 * 4096
    with path.open("r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(CheckpointCorrupt, match=r"job\.db: .*(malformed|damaged)"):
        async with open_sqlite_store(path, job="job"):
            pass


async def test_a_store_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.db"
    async with open_sqlite_store(path, job="job"):
        pass
    db = sqlite3.connect(path)
    db.execute("UPDATE store SET value = '2' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(
        CheckpointError, match="checkpoint store schema version 2; this partita opens version 1"
    ):
        async with open_sqlite_store(path, job="job"):
            pass


async def test_a_store_in_use_by_another_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.db"
    async with open_sqlite_store(path, job="job") as store:
        await store.commit(1, b"")
        with pytest.raises(
            CheckpointError, match=r"is in use by another process \(another run of job 'job'\?\)"
        ):
            async with open_sqlite_store(path, job="job"):
                pass
        assert await store.retained() == [1]


async def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot open the checkpoint store: unable to open"):
        async with open_sqlite_store(tmp_path / "nowhere" / "job.db", job="job"):
            pass


async def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"^keep must be at least 1, not 0$"):
        async with open_sqlite_store("x.db", job="job", keep=0):
            pass
    with pytest.raises(ValueError, match=r"^a job's name must not be empty$"):
        async with open_sqlite_store("x.db", job=""):
            pass


async def test_the_file_is_in_wal_mode_and_marked_as_ours(tmp_path: Path) -> None:
    path = tmp_path / "job.db"
    async with open_sqlite_store(path, job="job") as store:
        assert isinstance(store, SqliteCheckpointStore)
        await store.commit(1, b"")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA application_id").fetchone() == (0x50544341,)
    assert dict(db.execute("SELECT key, value FROM store")) == {
        "format": "partita checkpoint store",
        "schema_version": "1",
        "job": "job",
    }
    db.close()
    assert not (tmp_path / "job.db-wal").exists()  # closed cleanly: the log was folded in


async def test_a_cancel_while_the_transaction_runs_waits_for_it(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "job.db", job="job") as store:
        for actor in range(50):
            await store.stage(1, f"p{actor}", b"x" * 10_000)
        finished = False

        async def commit(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
            nonlocal finished
            with trio.CancelScope() as scope:
                task_status.started(scope)
                await store.commit(1, b"m")
                finished = True

        async with trio.open_nursery() as nursery:
            scope = await nursery.start(commit)
            await trio.testing.wait_all_tasks_blocked()  # the commit waits on its thread
            scope.cancel()
        assert finished  # the transaction ran to its end: the cancel comes after
        latest = await store.latest()
        assert latest is not None
        assert latest.id == 1
        assert len(latest.parts) == 50


async def test_a_commit_that_fails_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "job.db", job="job") as store:
        await store.stage(1, "a", b"1")
        await store.commit(1, b"m1")
        await store.stage(2, "a", b"2")
        # Fault injection (the one private access here): the file may not grow, as on a
        # full disk, so the commit's large manifest cannot be written.
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(
            CheckpointError, match=r"job\.db: OperationalError: database or disk is full"
        ):
            await store.commit(2, b"m" * 100_000)
        assert await store.latest() == Checkpoint(1, b"m1", {"a": b"1"})
        store._db.execute("PRAGMA max_page_count = 1073741823")
        await store.commit(2, b"m2")  # the part staged before is still staged
        assert await store.latest() == Checkpoint(2, b"m2", {"a": b"2"})


def _raw_parts(path: Path) -> list[tuple[int, str]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT checkpoint_id, actor FROM parts ORDER BY 1, 2").fetchall()
    finally:
        db.close()


# ------------------------------------------------------------------ kill -9

CHILD = textwrap.dedent(
    """
    import sys, trio
    from partita.runtime import encode_state, open_sqlite_store

    async def main(path, start):
        async with open_sqlite_store(path, job="kill", keep=3) as store:
            n = start
            while True:
                n += 1
                for actor in range(8):
                    state = {"n": n, "actor": actor, "pad": "x" * 2000}
                    await store.stage(n, f"p{actor}", encode_state(state))
                await store.commit(n, str(n).encode())
                print(n, flush=True)

    trio.run(main, sys.argv[1], int(sys.argv[2]))
    """
)


@pytest.mark.slow
def test_a_store_killed_mid_commit_reopens_to_one_whole_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "kill.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    committed = 0
    for round_ in range(6):
        child = subprocess.Popen(
            [sys.executable, str(script), str(path), str(committed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        wanted = committed + 5 + 3 * round_  # kill at different points of the loop
        for line in child.stdout:
            printed = int(line)
            if printed >= wanted:
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert printed >= wanted, child.stderr.read() if child.stderr else ""
        # The child went on committing until the signal landed: the pipe holds the
        # lines it printed after the one read above (a last line may be cut short).
        for line in child.stdout:
            if line.endswith("\n"):
                printed = int(line)
        committed = trio.run(_check_after_kill, path, printed)


async def _check_after_kill(path: Path, printed: int) -> int:
    async with open_sqlite_store(path, job="kill", keep=3) as store:
        latest = await store.latest()
        assert latest is not None
        # A commit that returned survived; the one in flight either did or did not.
        assert latest.id in (printed, printed + 1)
        assert latest.meta == str(latest.id).encode()
        assert latest.parts == {
            f"p{actor}": encode_state({"n": latest.id, "actor": actor, "pad": "x" * 2000})
            for actor in range(8)
        }
        retained = list(await store.retained())
        assert retained == list(range(latest.id - len(retained) + 1, latest.id + 1))
        assert 1 <= len(retained) <= 3
    ids = {n for n, _ in _raw_parts(path)}
    assert ids <= set(retained)  # no staged garbage once opened
    return latest.id


def test_docstring_examples() -> None:
    for module in (_store, _sqlite_store):
        failures, attempted = doctest.testmod(module, raise_on_error=False, verbose=False)
        assert failures == 0, module.__name__
        assert attempted > 0, module.__name__
