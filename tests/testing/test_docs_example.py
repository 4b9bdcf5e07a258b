"""docs/examples/test_pipeline.py passes under pytest, in a subprocess."""

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "test_pipeline.py"


def test_the_example_test_file_passes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n0", "-p", "no:cacheprovider", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


ENRICHED = EXAMPLE.parent / "enriched_windows.py"


def test_the_enriched_windows_example_passes_and_runs() -> None:
    # issue 13's "done when": a keyed tumbling window after an async enrichment step,
    # read with async for inside trio.run(main), property-tested on virtual time
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n0", "-p", "no:cacheprovider", str(ENRICHED)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    main = subprocess.run(
        [sys.executable, str(ENRICHED)], capture_output=True, text=True, check=True
    )
    lines = main.stdout.splitlines()
    assert sorted(lines[:3]) == ["a 0 2 6", "b 0 1 3", "c 0 1 10"]
    assert len(lines) == 9
