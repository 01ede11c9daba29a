"""Passwords never printed: masked up to the last ``@`` of the URL, and in driver messages.

Issue 17: ``postgresql://secretuser:p@ssW0rdXYZ@127.0.0.1:55432/adv`` was printed as
``secretuser:***@ssW0rdXYZ@127.0.0.1``, and libpq's message ("could not translate host
name "ssW0rdXYZ@127.0.0.1"") repeated the rest of the password.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import io
import uuid

import pytest
import sqlalchemy

from autotune import cli
from autotune._errors import StorageError
from autotune.storage import check_connection
from autotune.storage import mask_password
from autotune.storage import normalize_url
from autotune.storage import redact_password

AT_PASSWORD_URL = "postgresql://secretuser:p@ssW0rdXYZ@127.0.0.1:1/adv"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (AT_PASSWORD_URL, "postgresql://secretuser:***@127.0.0.1:1/adv"),
        ("postgresql://u:a@b@c@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@x:pw@h/db", "postgresql://***:***@h/db"),  # '@' in the user name
        ("postgresql://a@b@h/db", "postgresql://***@h/db"),
        ("postgresql://alice:s3cret@db:5432/x", "postgresql://alice:***@db:5432/x"),
        ("postgresql://alice@db/x", "postgresql://alice@db/x"),  # no password: unchanged
        (
            "postgresql://db/x?password=s3cret&sslmode=require",
            "postgresql://db/x?password=***&sslmode=require",
        ),
        ("user:pa@ss@h:1/db", "user:***@h:1/db"),  # no scheme
        ("not a url", "not a url"),
    ],
)
def test_everything_between_the_scheme_and_the_last_at_but_the_user_is_masked(
    url: str, masked: str
) -> None:
    assert mask_password(url) == masked


def test_a_password_with_an_unencoded_at_is_encoded_not_sent_as_the_host() -> None:
    assert normalize_url(AT_PASSWORD_URL) == (
        "postgresql+psycopg2://secretuser:p%40ssW0rdXYZ@127.0.0.1:1/adv"
    )
    assert normalize_url("postgresql://a@b@h/db") == "postgresql+psycopg2://a%40b@h/db"
    # an '@' after the host (in the query) is no password
    assert normalize_url("postgresql://u:pw@h/db?application_name=a@b") == (
        "postgresql+psycopg2://u:pw@h/db?application_name=a%40b"
    )


@pytest.mark.parametrize(
    "url",
    [AT_PASSWORD_URL, normalize_url(AT_PASSWORD_URL), "postgresql://h/x?password=p@ssW0rdXYZ"],
)
def test_driver_messages_are_redacted_whole_and_in_pieces(url: str) -> None:
    message = 'could not translate host name "ssW0rdXYZ@127.0.0.1"; password p@ssW0rdXYZ'
    redacted = redact_password(message, url)
    assert "ssW0rdXYZ" not in redacted and "p@ss" not in redacted
    assert redacted == 'could not translate host name "***@127.0.0.1"; password ***'
    assert redact_password(message, None) == message


def test_unreachable_server_error_shows_neither_the_password_nor_a_piece_of_it() -> None:
    with pytest.raises(StorageError) as raised:
        check_connection(normalize_url(AT_PASSWORD_URL))
    message = str(raised.value)
    assert "ssW0rdXYZ" not in message and "p@ss" not in message and "p%40ss" not in message
    assert "secretuser:***@127.0.0.1:1/adv" in message
    assert "127.0.0.1" in message and "could not translate host name" not in message


def _cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, err.getvalue()


@pytest.mark.parametrize("command", [["status", "x"], ["dashboard"], ["status"]])
def test_cli_prints_no_piece_of_a_password_with_at(command: list[str]) -> None:
    code, err = _cli(*command, "--storage", AT_PASSWORD_URL)
    assert code == 2, err
    assert "ssW0rdXYZ" not in err and "p@ss" not in err, err
    assert "secretuser:***@127.0.0.1" in err


@contextlib.contextmanager
def role_with_password(storage_url: str, password: str) -> Iterator[str]:
    """A login role with the password; the storage URL with its name and the password
    written in as a user would type it (not percent-encoded)."""
    role = f"masking_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(storage_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"))
    scheme, rest = storage_url.split("://", 1)
    try:
        yield f"{scheme}://{role}:{password}@{rest.rpartition('@')[2]}"
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_a_password_with_at_connects_as_written(storage_url: str) -> None:
    with role_with_password(storage_url, "p@ss-W0rd") as url:
        normalized = sqlalchemy.engine.make_url(normalize_url(url))
        assert normalized.password == "p@ss-W0rd"  # the test server may trust any password
        engine = sqlalchemy.create_engine(normalized)
        try:
            with engine.connect() as connection:
                user = connection.execute(sqlalchemy.text("SELECT current_user")).scalar()
        finally:
            engine.dispose()
    assert user is not None and user.startswith("masking_")
