"""The result queues' real statements can be served by their partial indexes (docs/architecture.md §6).

With sequential scans priced out, PostgreSQL uses an index only if the statement's WHERE implies the index's
predicate: a changed filter (e.g. `superseded_by__isnull` back as a LEFT JOIN) shows up here as a scan of the
whole result table.
"""

from collections.abc import Iterator

import pytest
from django.db import connection

from results.selectors import result_rows, results_to_verify, review_inbox


@pytest.fixture
def no_seq_scan(db) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET enable_seqscan")


def _plan(queryset) -> str:
    return queryset.explain()


def test_verification_queue_page_walks_its_index_and_probes_only_amending_rows(no_seq_scan, technician):
    page = _plan(result_rows(results_to_verify(user=technician))[:100])
    assert "result_unverified_idx" in page
    assert "Anti Join" in page  # NOT EXISTS, not a LEFT JOIN filtered afterwards
    count = _plan(results_to_verify(user=technician).order_by())
    assert "result_supersedes_idx" in count
    assert "Seq Scan on results_result" not in page + count


def test_review_inbox_page_walks_its_index(no_seq_scan, oncologist_a):
    page = _plan(result_rows(review_inbox(user=oncologist_a))[:100])
    assert "result_review_inbox_idx" in page
    assert "Seq Scan on results_result" not in page
