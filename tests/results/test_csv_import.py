"""CSV result files as labs and spreadsheets export them (results/csv_import.py): the command and the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from results.csv_import import CsvOptions, import_csv, parse_csv
from results.importing import Lookup, interface_user
from results.models import Result
from tests.results.helpers import collected_specimen

HEADER = "accession,mrn,loinc,value,unit,observed_at"
WHEN = "2026-01-05T08:30:00+00:00"


@pytest.fixture
def cbc(patient_a, nurse_a):
    return collected_specimen(patient_a, nurse_a, "CBC with differential")


@pytest.fixture
def cmp(patient_a, nurse_a):
    return collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_results", *args, "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str, *, encoding: str = "utf-8", name: str = "results.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def stored() -> dict[str, Result]:
    return {r.lab_test.name: r for r in Result.objects.select_related("lab_test")}


@pytest.mark.django_db
def test_semicolon_file_with_decimal_comma(tmp_path, cbc, patient_a):
    path = write(
        tmp_path,
        "accession;mrn;loinc;value;unit;observed_at\r\n"
        f"{cbc.accession};{patient_a.mrn};6690-2;5,2;10*3/uL;{WHEN}\r\n"
        f"{cbc.accession};{patient_a.mrn};777-3;40;10^9/L;{WHEN}\r\n",
    )
    out, err = run(str(path), "--decimal-comma")
    assert "Stored 2 results; refused 0" in out, err
    assert stored()["WBC"].received_value == "5.2"
    assert stored()["Platelets"].ctcae_grade == 3


@pytest.mark.django_db
def test_tab_file_header_in_other_case_and_order_with_spaces_and_an_extra_column(tmp_path, cbc, patient_a):
    path = write(
        tmp_path,
        " Observed At \tLOINC\tValue\tUnit\tComment\tMRN\t ACCESSION \n"
        f"{WHEN}\t6690-2\t5.2\t10*3/uL\tfasting\t{patient_a.mrn}\t{cbc.accession}\n",
        name="export.CSV",
    )
    out, err = run(str(path))
    assert "Stored 1 results; refused 0" in out, err
    assert stored()["WBC"].observed_at == datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


@pytest.mark.django_db
def test_excel_trailing_comma_rows_and_empty_rows_are_ignored(tmp_path, cbc, patient_a):
    path = write(
        tmp_path,
        f"\n{HEADER},,\n"
        f"{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{WHEN},,\n"
        "\n"
        ",,,,,,,\n"
        f"{cbc.accession},{patient_a.mrn},777-3,140,10*9/L,{WHEN},,\n"
        ",,,,,\n,,,,,\n",
    )
    out, err = run(str(path))
    assert "Stored 2 results; refused 0" in out
    assert err == ""


@pytest.mark.django_db
def test_utf8_with_byte_order_mark(tmp_path, cbc, patient_a):
    path = write(
        tmp_path, f"{HEADER}\n{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{WHEN}\n", encoding="utf-8-sig"
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    out, _ = run(str(path))
    assert "Stored 1 results; refused 0" in out


@pytest.mark.django_db
def test_windows_1252_file_needs_encoding_and_then_reads(tmp_path, cmp, patient_a):
    text = (
        f"{HEADER}\n{cmp.accession},{patient_a.mrn},2823-3,4.1,mmol/L,{WHEN}\n"
        f"{cmp.accession},{patient_a.mrn},2160-0,88,µmol/L,{WHEN}\n"
    )
    path = write(tmp_path, text, encoding="cp1252")
    out, err = run(str(path))
    assert "Stored 0 results; refused 1" in out
    assert "results.csv: refused: file: line 3: byte 0xB5 is not UTF-8" in err
    assert "--encoding" in err
    assert not Result.objects.exists()  # the potassium on line 2 waits for the right encoding too

    out, err = run(str(path), "--encoding", "cp1252")
    assert "Stored 2 results; refused 0" in out, err
    creatinine = stored()["Creatinine"]
    assert creatinine.received_unit == "µmol/L"
    assert creatinine.value_numeric == pytest.approx(Decimal("1.0"), abs=Decimal("0.01"))


@pytest.mark.django_db
def test_unknown_encoding_is_a_refusal_not_a_traceback(tmp_path, cbc, patient_a):
    path = write(tmp_path, f"{HEADER}\n{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{WHEN}\n")
    _, err = run(str(path), "--encoding", "klingon")
    assert "unknown encoding 'klingon'" in err


@pytest.mark.django_db
def test_date_format(tmp_path, cbc, patient_a):
    path = write(tmp_path, f"{HEADER}\n{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,05.01.2026 08:30\n")
    out, err = run(str(path), "--date-format", "%d.%m.%Y %H:%M")
    assert "Stored 1 results" in out, err
    assert stored()["WBC"].observed_at == datetime(2026, 1, 5, 8, 30, tzinfo=UTC)  # TIME_ZONE is UTC


@pytest.mark.django_db
def test_unreadable_date_refuses_its_specimen_with_the_line_never_the_collection_time(tmp_path, cbc, cmp, patient_a):
    path = write(
        tmp_path,
        f"{HEADER}\n"
        f"{cmp.accession},{patient_a.mrn},2823-3,4.1,mmol/L,{WHEN}\n"
        f"{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{WHEN}\n"
        f"{cbc.accession},{patient_a.mrn},777-3,140,10*9/L,05/01/2026 08:30\n"
        f"{cbc.accession},{patient_a.mrn},718-7,13.5,g/dL,2026-01-05\n"
        f"{cmp.accession},{patient_a.mrn},2951-2,140,mmol/L,{WHEN}\n",
    )
    out, err = run(str(path))
    assert "Stored 2 results; refused 1" in out
    assert "results.csv: refused: line 4: observed_at '05/01/2026 08:30' is not a date and time in ISO 8601" in err
    assert "line 5: observed_at '2026-01-05' is not a date and time" in err  # a date without a time
    assert f"Specimen {cbc.accession} not stored (lines 3, 4, 5)" in err
    assert set(stored()) == {"Potassium", "Sodium"}  # the CBC is not half-written; the CMP rows around it are kept
    assert "Traceback" not in err


@pytest.mark.django_db
def test_future_date_and_unknown_codes_are_line_numbered_refusals(tmp_path, cbc, cmp, patient_a):
    future = (timezone.now() + timedelta(days=2)).isoformat()
    path = write(
        tmp_path,
        f"{HEADER}\n"
        f"{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{future}\n"
        f"{cmp.accession},{patient_a.mrn},99999-9,1,U/L,{WHEN}\n"
        f"999999999,{patient_a.mrn},2823-3,4.1,mmol/L,{WHEN}\n"
        f",{patient_a.mrn},2823-3,4.1,mmol/L,{WHEN}\n"
        f"{cmp.accession},{patient_a.mrn},2823-3,4.1\n"
        f"{cmp.accession},{patient_a.mrn},2823-3,four,mmol/L,{WHEN}\n",
    )
    out, err = run(str(path))
    assert "Stored 0 results; refused 4" in out
    assert "line 2: observed_at" in err
    assert "is in the future" in err
    assert "line 3: unknown test code (loinc) '99999-9'" in err
    assert "line 4: unknown accession '999999999'" in err
    assert "line 5: accession is empty" in err
    assert "line 6: 4 fields, the header has 6" in err
    assert not Result.objects.exists()


@pytest.mark.django_db
def test_value_errors_from_the_service_name_the_line_and_the_column(tmp_path, cbc, patient_a):
    path = write(
        tmp_path,
        f"{HEADER}\n{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{WHEN}\n"
        f"{cbc.accession},{patient_a.mrn},777-3,lots,10*9/L,{WHEN}\n",
    )
    _, err = run(str(path))
    assert "line 3: value: 'lots' is not a number" in err
    assert not Result.objects.exists()
    path = write(tmp_path, f"{HEADER}\n{cbc.accession},{patient_a.mrn},777-3,40,mmol/L,{WHEN}\n")
    _, err = run(str(path))
    assert "line 2: unit: " in err


@pytest.mark.django_db
def test_decimal_separators_are_never_guessed(tmp_path, cbc, patient_a):
    comma = write(tmp_path, f'{HEADER}\n{cbc.accession},{patient_a.mrn},6690-2,"5,2",10*3/uL,{WHEN}\n')
    _, err = run(str(comma))
    assert "line 2: value '5,2' has a comma: a decimal comma needs --decimal-comma" in err
    point = write(tmp_path, f"{HEADER.replace(',', ';')}\n{cbc.accession};{patient_a.mrn};777-3;1.234;10*9/L;{WHEN}\n")
    _, err = run(str(point), "--decimal-comma")
    assert "line 2: value '1.234' has a decimal point, but the file is read with --decimal-comma" in err
    assert not Result.objects.exists()


@pytest.mark.django_db
def test_missing_columns_and_an_empty_file_are_refusals(tmp_path):
    path = write(tmp_path, "accession;patient;loinc;value\n1;2;3;4\n")
    out, err = run(str(path))
    assert "refused 1" in out
    assert "file: line 1: the header lacks the columns mrn, unit, observed_at" in err
    empty = write(tmp_path, ",,,\n\n", name="empty.csv")
    _, err = run(str(empty))
    assert "empty.csv: refused: file: the file has no header line" in err


@pytest.mark.django_db
def test_dry_run_reports_what_would_be_stored_and_stores_nothing(tmp_path, cbc, patient_a, django_user_model):
    path = write(
        tmp_path,
        f"{HEADER}\n{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{WHEN}\n"
        f"{cbc.accession},{patient_a.mrn},777-3,40,10^9/L,{WHEN}\n"
        f"999999999,{patient_a.mrn},777-3,40,10^9/L,{WHEN}\n",
    )
    users = django_user_model.objects.count()
    out, err = run(str(path), "--dry-run")
    assert f"results.csv: would store line 2: {cbc.accession} WBC 5.2 10*3/uL -> 5.2 10*3/uL\n" in out
    assert f"results.csv: would store line 3: {cbc.accession} Platelets 40 10^9/L -> 40 10*3/uL [L CTCAE G3]" in out
    assert "Dry run, nothing stored: would store 2 results; refused 1" in out
    assert "line 4: unknown accession" in err
    assert not Result.objects.exists()
    assert django_user_model.objects.count() == users  # not even the interface account

    out, _ = run(str(path))  # the real run stores what the dry run announced
    assert "Stored 2 results; refused 1" in out


@pytest.mark.django_db
def test_dry_run_is_refused_for_hl7_files(tmp_path):
    with pytest.raises(CommandError, match="--dry-run is for CSV files only"):
        run(str(write(tmp_path, "MSH|^~\\&|\r", name="batch.hl7")), "--dry-run")


@pytest.mark.django_db
def test_a_file_imported_twice_is_refused_the_second_time_by_line(tmp_path, cbc, patient_a):
    path = write(tmp_path, f"{HEADER}\n{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{WHEN}\n")
    assert "Stored 1 results" in run(str(path))[0]
    out, err = run(str(path))
    assert "Stored 0 results; refused 1" in out
    assert "line 2: A result already exists" in err


@pytest.mark.django_db
def test_rows_of_one_specimen_anywhere_in_the_file_are_one_group(tmp_path, cbc, cmp, patient_a, patient_b):
    path = write(
        tmp_path,
        f"{HEADER}\n"
        f"{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{WHEN}\n"
        f"{cmp.accession},{patient_a.mrn},2823-3,4.1,mmol/L,{WHEN}\n"
        f"{cbc.accession},{patient_b.mrn},777-3,140,10*9/L,{WHEN}\n",
    )
    out, err = run(str(path))
    assert "Stored 1 results; refused 1" in out
    assert "line 4: mrn differs from line 2 of the same specimen" in err
    assert set(stored()) == {"Potassium"}


# --- The service ---------------------------------------------------------------------------------------------


def test_parse_csv_sniffs_the_delimiter_and_numbers_lines_without_a_database():
    now = datetime(2026, 2, 1, tzinfo=UTC)
    data = (
        "\ufeffACCESSION;Mrn;Loinc;Value;Unit;Observed_At\r\n"
        '123;M1;2823-3;"4,1";mmol/L;2026-01-05 08:30\r\n'
        ";;;;;\r\n"
        '123;M1;2160-0;"8\n8";umol/L;\r\n'
        "124;M1;2823-3;4,2;mmol/L;yesterday\r\n"
    ).encode()
    parsed = parse_csv(data, name="x.csv", options=CsvOptions(decimal_comma=True), now=now)
    assert parsed.delimiter == ";"
    assert not parsed.error
    first, second = parsed.groups
    assert [(r.line, r.value, r.observed_at) for r in first.rows] == [
        (2, "4.1", datetime(2026, 1, 5, 8, 30, tzinfo=UTC)),
        (4, "8\n8", None),  # a quoted line break: the record starts on line 4; blank observed_at: collection time
    ]
    assert first.lines == [2, 4]
    assert second.refusals == ["line 6: observed_at 'yesterday' is not a date and time in ISO 8601 with a time, "
                               "e.g. 2026-11-22T10:15."]  # fmt: skip


@pytest.mark.django_db
def test_import_csv_service_reports_per_line(tmp_path, cbc, cmp, patient_a):
    path = write(
        tmp_path,
        f"{HEADER}\n{cbc.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{WHEN}\n"
        f"{cmp.accession},{patient_a.mrn},2823-3,4.1,mmol/L,not a date\n",
    )
    report = import_csv(path, user=interface_user(), now=timezone.now(), lookup=Lookup())
    assert (report.specimens_stored, report.specimens_refused, report.refused) == (1, 1, 1)
    assert [s.line for s in report.stored] == [2]
    assert report.stored[0].result.pk is not None
    assert report.refusals == [
        "line 3: observed_at 'not a date' is not a date and time in ISO 8601 with a time, e.g. 2026-11-22T10:15."
    ]

    dry = import_csv(path, user=interface_user(), now=timezone.now(), dry_run=True)
    assert dry.dry_run
    assert "A result already exists" in dry.refusals[0]
    assert Result.objects.count() == 1
