"""Small things people expect: reports apart per storage, JSON cells in CSV, a batch
size no larger than the training set."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from autotune.campaign._campaign import csv_cell
from autotune.cli import probe_size_cap
from autotune.storage._storage_key import report_subdirectory
from autotune.storage._storage_key import storage_key


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("postgresql://u:secret@db.example.com:6543/tuning", "db.example.com-6543-tuning"),
        (
            "postgresql+psycopg2://u@db.example.com/tuning?sslmode=require",
            "db.example.com-5432-tuning",
        ),
        ("postgresql://u@/autotune?host=/tmp/run/pg", "tmp_run_pg-5432-autotune"),
    ],
)
def test_a_storage_key_names_host_port_and_database_only(url: str, key: str) -> None:
    assert storage_key(url) == key
    assert "secret" not in storage_key(url)


def test_reports_of_one_name_in_two_storages_do_not_collide() -> None:
    local = report_subdirectory(None, "quickstart")
    remote = report_subdirectory("postgresql://u@db1/tuning", "quickstart")
    other = report_subdirectory("postgresql://u@db2/tuning", "quickstart")
    assert local == Path("quickstart")
    assert remote == Path("db1-5432-tuning/quickstart")
    assert len({local, remote, other}) == 3


def test_csv_cells_hold_json_not_python_repr() -> None:
    checkpoint = {"artifact_id": "a1", "step": 60, "done": True, "lost": None}
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell(checkpoint), csv_cell([1, "x"]), csv_cell(0.5)])
    row = next(csv.reader(io.StringIO(out.getvalue())))
    assert json.loads(row[0]) == checkpoint and json.loads(row[1]) == [1, "x"]
    assert row[2] == "0.5"


def test_the_probe_stops_at_the_training_rows_and_says_so() -> None:
    size, note = probe_size_cap(4096, 1437)
    assert size == 1437
    assert note == (
        "batch sizes capped at the 1,437 training rows (--max-batch-size 4,096): a larger "
        "batch would repeat rows within a step"
    )
    assert probe_size_cap(4096, 10_000) == (4096, None)
