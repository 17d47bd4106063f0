"""Which passwords a person may choose, after NIST SP 800-63B-4 (section 3.1.1.2).

A length in Unicode code points between the bounds, and no composition rules. Refused: a
password on the list of common and breached ones (common-passwords.txt.gz, see its NOTICE),
one equal to the account's username, email or the email's local part, and the service's
name with only digits and punctuation around it. Comparisons are casefolded.

The list is read on the first check, not at import, so a Lambda cold start never reads it.
That first check takes 3 to 8 ms more (measured, gzip's import included); the frozenset of
8,354 entries holds about 1.5 MiB.
"""

import string

from nimbus.domain.errors import InvalidInput
from nimbus.domain.users import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from nimbus.values import frozen

# NIST: a verifier SHOULD permit passwords of at least 64 characters; nimbus always does.
MAX_LENGTH_FLOOR = 64
SERVICE_NAME = "nimbus"
BLOCKLIST_FILE = "common-passwords.txt.gz"
_AROUND_A_WORD = string.digits + string.punctuation + " "

_blocklist: frozenset[str] | None = None  # read on first use


def blocklist() -> frozenset[str]:
    """The common passwords, casefolded, read from the package the first time."""
    global _blocklist
    if _blocklist is None:
        import gzip  # only in a process that checks a password
        from importlib import resources

        data = resources.files(__package__).joinpath(BLOCKLIST_FILE).read_bytes()
        _blocklist = frozenset(gzip.decompress(data).decode().splitlines())
    return _blocklist


@frozen
class PasswordPolicy:
    min_length: int = PASSWORD_MIN_LENGTH
    max_length: int = PASSWORD_MAX_LENGTH
    blocklist: bool = True

    def __post_init__(self) -> None:
        if self.min_length < PASSWORD_MIN_LENGTH:
            raise ValueError(f"the minimum length must be at least {PASSWORD_MIN_LENGTH}")
        if not max(MAX_LENGTH_FLOOR, self.min_length) <= self.max_length <= PASSWORD_MAX_LENGTH:
            raise ValueError(
                f"the maximum length must be at least {MAX_LENGTH_FLOOR} and the minimum,"
                f" and at most {PASSWORD_MAX_LENGTH}"
            )

    def check(
        self, password: str, *, username: str | None = None, email: str | None = None
    ) -> None:
        """InvalidInput if a person may not choose this password for this account. The
        message never repeats the password."""
        if len(password) < self.min_length:
            raise InvalidInput(
                f"Choose a password of at least {self.min_length} characters",
                code="password_too_short",
            )
        if len(password) > self.max_length:
            raise InvalidInput(
                f"Choose a password of at most {self.max_length} characters",
                code="password_too_long",
            )
        folded = password.casefold()
        if folded in _account_words(username, email):
            raise InvalidInput(
                "Choose a password that is not your username or email",
                code="password_matches_account",
            )
        if folded.strip(_AROUND_A_WORD) == SERVICE_NAME or (
            self.blocklist and folded in blocklist()
        ):
            raise InvalidInput(
                "That password is too common; choose another", code="password_too_common"
            )


def _account_words(username: str | None, email: str | None) -> set[str]:
    words = set()
    if username:
        words.add(username.casefold())
    if email:
        local, _, _ = email.rpartition("@")
        words.update(word.casefold() for word in (email, local) if word)
    return words


DEFAULT_POLICY = PasswordPolicy()  # the settings' defaults: 8 to 1024 code points, the list on
