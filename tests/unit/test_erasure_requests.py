"""Erasure requests hold salted hashes, never the identifiers themselves."""

from __future__ import annotations

import hashlib
import stat

import duckdb
import pytest
from typer.testing import CliRunner

from journeys.cli import app
from journeys.erasure import (
    ERASED_REASON,
    ErasureError,
    erased_row_reason_sql,
    identifier_hash,
    pending_requests,
    record_request,
    salt,
)
from journeys.settings import get_settings


@pytest.fixture
def settings(tmp_path):
    return get_settings({"JOURNEYS_HOME": str(tmp_path)})


def test_request_file_holds_no_plain_identifier(settings) -> None:
    request = record_request(
        settings, email=" Ada.Lovelace@Example.COM ", customer_id="cj_0123456789abcdef"
    )
    text = request.path.read_text().lower()
    for plain in ("ada.lovelace", "example.com", "0123456789abcdef", "lovelace"):
        assert plain not in text
    unsalted = hashlib.sha256(b"ada.lovelace@example.com").hexdigest()
    assert unsalted not in text  # an unsalted hash could be reversed from a list of addresses
    assert [p.request_id for p in pending_requests(settings)] == [request.request_id]
    kinds = {i["kind"]: i["hash"] for i in request.identifiers}
    assert kinds["email"] == identifier_hash(salt(settings), "email", "ada.lovelace@example.com")


def test_salt_is_secret_and_stable(settings) -> None:
    first = salt(settings)
    assert len(first) == 64 and salt(settings) == first
    mode = stat.S_IMODE((settings.erasure_dir / "salt").stat().st_mode)
    assert mode == 0o600
    other = get_settings({"JOURNEYS_HOME": str(settings.home / "other")})
    assert salt(other) != first  # another environment, another salt
    fixed = get_settings({"JOURNEYS_HOME": str(settings.home), "JOURNEYS_ERASURE_SALT": "s3cret"})
    assert salt(fixed) == "s3cret"


def test_sql_and_python_hash_the_same_normalised_value(settings) -> None:
    """Landing recognises a re-delivered row by hashing in SQL what forget hashed in Python."""
    secret = salt(settings)
    hashes = [
        identifier_hash(secret, "email", "Ada@Example.com"),
        identifier_hash(secret, "phone", "+49 (175) 388-5592"),
    ]
    reason = erased_row_reason_sql({"email", "phone", "crm_id", "street"}, secret)
    with duckdb.connect() as con:
        con.execute("create table erased_identifiers (identifier_hash varchar)")
        con.executemany("insert into erased_identifiers values (?)", [[h] for h in hashes])
        judged = con.execute(
            f"select crm_id, {reason} from (values "
            "('C1', '  ADA@example.COM ', null, 'a'), "
            "('C2', 'someone@else.org', '0049 175 3885592', 'b'), "  # E.164 alike
            "('C3', 'someone@else.org', '+49-175-3885592', 'c'), "
            "('C4', null, null, 'ada@example.com'), "  # the value in another column: not an id
            "('C5', null, '0175 3885592', 'e'), "  # national form: the dbt default country
            "('C6', null, '+44 175 3885592', 'f')"  # another country
            ") as t(crm_id, email, phone, street) order by 1"
        ).fetchall()
    assert judged == [
        ("C1", ERASED_REASON),
        ("C2", ERASED_REASON),
        ("C3", ERASED_REASON),
        ("C4", None),
        ("C5", ERASED_REASON),
        ("C6", None),
    ]


def test_forget_needs_an_identifier(settings, monkeypatch) -> None:
    monkeypatch.setenv("JOURNEYS_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["forget"])
    assert result.exit_code == 2
    assert "needs --email" in result.output
    with pytest.raises(ErasureError):
        record_request(settings, email="   ")
    result = CliRunner().invoke(app, ["forget", "--email", "x@example.org"])
    assert result.exit_code == 0, result.output
    (request_file,) = (settings.erasure_dir / "requests").glob("*.json")
    assert "x@example.org" not in request_file.read_text()
