"""The error types a user can cause; the CLI prints them without a traceback."""

from __future__ import annotations


class AutotuneError(Exception):
    """Base of every error caused by user input or environment, not by a bug."""


class SpecError(AutotuneError, ValueError):
    """A search-space or study spec file is invalid.

    The message names the file, the key path of each problem, the bad value and what is allowed.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid spec {source}:\n{lines}")


class StorageError(AutotuneError):
    """The storage URL is malformed, unsupported or the server cannot be reached."""


class CampaignNotFoundError(AutotuneError, LookupError):
    """No campaign of that name exists in the storage."""


class CampaignExistsError(AutotuneError):
    """A campaign of that name exists already, with a different spec."""
