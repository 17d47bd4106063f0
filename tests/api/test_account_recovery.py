"""Password reset and email verification over HTTP, on every backend, with the mail read
from a real SMTP server: the links, single use, the kinds of token, and answers that never
tell whether an account exists."""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nimbus.api.routes.accounts import ANSWER_FLOOR, FORGOT_ANSWER
from nimbus.bootstrap import LINK_PURPOSE, build, signing_key
from nimbus.container import Container
from nimbus.domain.audit import AuditKind
from nimbus.security.links import LinkKind, LinkTokens
from nimbus.security.macs import Mac
from nimbus.services.clock import utc_now
from nimbus.settings import Settings
from nimbus.storage import open_storage
from tests.loop_guard import guard_the_loop
from tests.mail.servers import Received, SmtpServer, smtp_server
from tests.support import PASSWORD, live_server, log_in, sign_up

NEW_PASSWORD = "a brand new passphrase"
PUBLIC_URL = "https://nimbus.example"
RESET_SUBJECT = "Reset your password"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def _mail_settings(settings: Settings, smtp: SmtpServer, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={"mail_url": f"smtp://127.0.0.1:{smtp.port}", "public_url": PUBLIC_URL} | overrides
    )


@pytest.fixture
def mail_container(settings: Settings, smtp: SmtpServer) -> Iterator[Container]:
    configured = _mail_settings(settings, smtp)
    storage = open_storage(configured.resolved_database_url, timeout=configured.database_timeout)
    built = build(configured, storage=guard_the_loop(storage))
    yield built
    built.close()


@pytest.fixture
def client(mail_container: Container) -> Iterator[httpx.Client]:
    with live_server(mail_container) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def wait_for_mail(smtp: SmtpServer, count: int, timeout: float = 10) -> list[Received]:
    deadline = time.monotonic() + timeout
    while len(smtp.inbox.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(smtp.inbox.received) >= count, f"{len(smtp.inbox.received)} mails, not {count}"
    return smtp.inbox.received


def token_in(mail: Received, fragment: str) -> str:
    """The token of the one link in the mail, checked to point at the public URL's page."""
    text = mail.mail.get_body(("plain",))
    assert text is not None
    links = [word for word in text.get_content().split() if word.startswith(PUBLIC_URL)]
    assert len(links) == 1, links
    parts = urlsplit(links[0])
    assert (parts.path, parts.fragment) == ("/", fragment)
    html = mail.mail.get_body(("html",))
    assert html is not None
    assert f'href="{links[0].replace("&", "&amp;")}"' in html.get_content()
    token: str = parse_qs(parts.query)["token"][0]
    return token


def mail_with(smtp: SmtpServer, subject: str, number: int = 1, timeout: float = 10) -> Received:
    """The `number`th mail with this subject, once it has arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in smtp.inbox.received if m.mail["Subject"] == subject]
        if len(found) >= number:
            return found[number - 1]
        time.sleep(0.02)
    raise AssertionError(f"no mail number {number} with subject {subject!r}")


def reset_token(client: httpx.Client, smtp: SmtpServer, **name: str) -> str:
    before = sum(m.mail["Subject"] == RESET_SUBJECT for m in smtp.inbox.received)
    assert client.post("/auth/password/forgot", json=name).status_code == 202
    return token_in(mail_with(smtp, RESET_SUBJECT, before + 1), "reset-password")


def test_a_forgotten_password_is_reset_through_the_mailed_link(
    client: httpx.Client, smtp: SmtpServer, mail_container: Container
) -> None:
    alice = sign_up(client, "alice", email="alice@example.com")
    old_access = log_in(client, "alice")
    old_refresh = client.post("/login", json={"username": "alice", "password": PASSWORD}).json()[
        "refresh_token"
    ]
    response = client.post("/auth/password/forgot", json={"email": "Alice@Example.com"})
    assert (response.status_code, response.json()) == (202, {"message": FORGOT_ANSWER})
    mail = wait_for_mail(smtp, 2)[1]  # the first is the welcome's verification link
    assert mail.recipients == ["alice@example.com"]
    assert mail.mail["Subject"] == "Reset your password"
    token = token_in(mail, "reset-password")

    answer = client.post("/auth/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert answer.status_code == 204
    assert (
        client.post("/login", json={"username": "alice", "password": PASSWORD}).status_code == 401
    )
    assert log_in(client, "alice", NEW_PASSWORD)
    # Every session ended: the old access token and refresh token with them.
    assert (
        client.get("/users/me", headers={"Authorization": f"Bearer {old_access}"}).status_code
        == 401
    )
    assert client.post("/auth/refresh", json={"refresh_token": old_refresh}).status_code == 401
    notice = wait_for_mail(smtp, 3)[2]
    assert notice.mail["Subject"] == "Your password was changed"
    assert notice.recipients == ["alice@example.com"]

    kinds = [
        event.kind
        for event in mail_container.audit.list_all(subject=alice["id"], limit=20).items
        if event.kind.value.startswith("password.")
    ]
    assert kinds == [AuditKind.PASSWORD_RESET, AuditKind.PASSWORD_RESET_REQUESTED]
    again = client.post(
        "/auth/password/reset", json={"token": token, "password": "yet another one!"}
    )
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"
    assert log_in(client, "alice", NEW_PASSWORD)


def test_the_answer_is_the_same_whether_or_not_the_account_exists(
    client: httpx.Client, smtp: SmtpServer
) -> None:
    sign_up(client, "alice", email="alice@example.com")
    sign_up(client, "nomail")  # an account without an email gets no mail either
    wait_for_mail(smtp, 1)
    answers = [
        client.post("/auth/password/forgot", json=body)
        for body in (
            {"username": "alice"},
            {"username": "nobody"},
            {"email": "nobody@example.com"},
            {"username": "nomail"},
        )
    ]
    assert {(a.status_code, a.text) for a in answers} == {(202, answers[0].text)}
    wait_for_mail(smtp, 2)
    time.sleep(0.3)  # room for a wrong mail to arrive
    assert [mail.recipients for mail in smtp.inbox.received] == [["alice@example.com"]] * 2


def test_the_answer_takes_as_long_whether_or_not_the_account_exists(
    client: httpx.Client, smtp: SmtpServer
) -> None:
    sign_up(client, "alice", email="alice@example.com")
    known: list[float] = []
    unknown: list[float] = []
    for round_ in range(3):  # within the account's limit of 3 mails
        for name, times in (("alice", known), (f"nobody{round_}", unknown)):
            started = time.perf_counter()
            assert client.post("/auth/password/forgot", json={"username": name}).status_code == 202
            times.append(time.perf_counter() - started)
    assert min(known + unknown) >= ANSWER_FLOOR
    # Both are the floor and a request's own work, which is far below it. The fastest of each
    # are compared: a busy machine only ever adds time.
    assert abs(min(known) - min(unknown)) < ANSWER_FLOOR / 2


def test_links_asked_for_are_limited_per_account_silently_and_per_address_loudly(
    client: httpx.Client, smtp: SmtpServer
) -> None:
    sign_up(client, "alice", email="alice@example.com")
    for _ in range(5):
        assert client.post("/auth/password/forgot", json={"username": "alice"}).status_code == 202
    wait_for_mail(smtp, 4)  # the welcome, then three links: the account's limit
    time.sleep(0.3)
    assert len(smtp.inbox.received) == 4
    statuses = [
        client.post("/auth/password/forgot", json={"username": f"n{i}"}).status_code
        for i in range(16)
    ]
    assert statuses[:15] == [202] * 15  # 20 per address, 5 used above
    assert statuses[15] == 429


def test_a_reset_link_dies_once_the_password_changes(
    client: httpx.Client, smtp: SmtpServer
) -> None:
    alice = sign_up(client, "alice", email="alice@example.com")
    token = reset_token(client, smtp, username="alice")
    headers = {"Authorization": f"Bearer {log_in(client, 'alice')}"}
    changed = client.patch(
        f"/users/{alice['id']}",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 200
    answer = client.post("/auth/password/reset", json={"token": token, "password": "x" * 20})
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_token")
    assert log_in(client, "alice", NEW_PASSWORD)


def test_a_reset_token_is_used_once_even_by_two_requests_at_once(
    client: httpx.Client, smtp: SmtpServer
) -> None:
    sign_up(client, "alice", email="alice@example.com")
    token = reset_token(client, smtp, username="alice")
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def use(password: str) -> None:
        barrier.wait()
        response = client.post("/auth/password/reset", json={"token": token, "password": password})
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=use, args=(p,)) for p in ("first new pass!", "second new pass")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [204, 400]


def test_each_kind_of_token_is_refused_where_another_is_expected(
    client: httpx.Client, smtp: SmtpServer
) -> None:
    sign_up(client, "alice", email="alice@example.com")
    verification = token_in(mail_with(smtp, "Verify your email"), "verify-email")
    reset = reset_token(client, smtp, username="alice")
    access = log_in(client, "alice")
    for token in (reset, verification):
        assert (
            client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        )
    for token in (access, verification):
        answer = client.post(
            "/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
        )
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_token")
    for token in (access, reset, "not-a-token"):
        answer = client.post("/auth/email/verify", json={"token": token})
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_token")
    assert log_in(client, "alice")  # nothing changed


def test_an_expired_reset_token_is_refused(
    client: httpx.Client, smtp: SmtpServer, mail_container: Container
) -> None:
    sign_up(client, "alice", email="alice@example.com")
    user = mail_container.storage.users.find_by_username("alice")
    assert user is not None
    links = LinkTokens(
        Mac(signing_key(mail_container.settings), purpose=LINK_PURPOSE),
        issuer=mail_container.settings.token_issuer,
        audience=mail_container.settings.token_audience,
    )
    ttl = timedelta(seconds=mail_container.settings.password_reset_ttl)
    kind = LinkKind.PASSWORD_RESET
    fresh, _ = links.issue(kind, subject=user.id, state=user.password_hash, ttl=ttl, now=utc_now())
    stale, _ = links.issue(
        kind, subject=user.id, state=user.password_hash, ttl=ttl, now=utc_now() - ttl * 2
    )
    answer = client.post("/auth/password/reset", json={"token": stale, "password": NEW_PASSWORD})
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_token")
    # The same token, made now, works: only its age was wrong.
    answer = client.post("/auth/password/reset", json={"token": fresh, "password": NEW_PASSWORD})
    assert answer.status_code == 204


def test_a_new_password_through_a_link_meets_the_policy(
    client: httpx.Client, smtp: SmtpServer
) -> None:
    sign_up(client, "alice", email="alice@example.com")
    token = reset_token(client, smtp, username="alice")
    short = client.post("/auth/password/reset", json={"token": token, "password": "short"})
    assert short.status_code == 422
    common = client.post("/auth/password/reset", json={"token": token, "password": "password1234"})
    assert (common.status_code // 100, common.json()["code"]) == (4, "password_too_common")
    # Refused passwords do not use the token up.
    answer = client.post("/auth/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert answer.status_code == 204


def test_an_email_is_verified_through_the_mailed_link(
    client: httpx.Client, smtp: SmtpServer, mail_container: Container
) -> None:
    alice = sign_up(client, "alice", email="alice@example.com")
    mail = wait_for_mail(smtp, 1)[0]
    assert (mail.recipients, mail.mail["Subject"]) == (["alice@example.com"], "Verify your email")
    headers = {"Authorization": f"Bearer {log_in(client, 'alice')}"}
    assert client.get("/users/me", headers=headers).json()["user"]["email_verified"] is False
    token = token_in(mail, "verify-email")
    assert client.post("/auth/email/verify", json={"token": token}).status_code == 204
    assert client.get("/users/me", headers=headers).json()["user"]["email_verified"] is True
    verified = mail_container.audit.list_all(kind=AuditKind.EMAIL_VERIFIED, limit=5).items
    assert [(e.actor, e.subject) for e in verified] == [(alice["id"], alice["id"])]
    assert client.post("/auth/email/verify", json={"token": token}).status_code == 204  # again

    # A new email is unverified again: a link to it, a notice to the old one.
    changed = client.patch(
        f"/users/{alice['id']}",
        json={"email": "alice@new.example", "current_password": PASSWORD},
        headers=headers,
    )
    assert (changed.status_code, changed.json()["email_verified"]) == (200, False)
    mails = wait_for_mail(smtp, 3)[1:]
    by_recipient = {mail.recipients[0]: mail for mail in mails}
    assert (
        by_recipient["alice@example.com"].mail["Subject"] == "The email of your account was changed"
    )
    new_token = token_in(by_recipient["alice@new.example"], "verify-email")
    # The old address's link no longer verifies anything: it names another email.
    stale = client.post("/auth/email/verify", json={"token": token})
    assert (stale.status_code, stale.json()["code"]) == (400, "invalid_token")
    assert client.post("/auth/email/verify", json={"token": new_token}).status_code == 204


@pytest.fixture
def strict_client(settings: Settings, smtp: SmtpServer) -> Iterator[httpx.Client]:
    configured = _mail_settings(settings, smtp, require_verified_email=True)
    storage = open_storage(configured.resolved_database_url, timeout=configured.database_timeout)
    container = build(configured, storage=guard_the_loop(storage))
    try:
        with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield http
    finally:
        container.close()


def test_with_verified_emails_required_an_unverified_account_cannot_log_in(
    strict_client: httpx.Client, smtp: SmtpServer
) -> None:
    client = strict_client
    sign_up(client, "alice", email="alice@example.com")
    wrong = client.post("/login", json={"username": "alice", "password": "not the password"})
    assert wrong.status_code == 401  # the account's state is told only with the password
    refused = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert (refused.status_code, refused.json()["code"]) == (403, "email_not_verified")
    assert (
        client.post("/auth/email/verify/send", json={"email": "alice@example.com"}).status_code
        == 202
    )
    first, second = wait_for_mail(smtp, 2)
    assert (
        client.post(
            "/auth/email/verify", json={"token": token_in(second, "verify-email")}
        ).status_code
        == 204
    )
    assert log_in(client, "alice")
    token_in(first, "verify-email")


def test_with_verified_emails_required_a_taken_email_signs_up_as_a_new_one_does(
    strict_client: httpx.Client, smtp: SmtpServer
) -> None:
    client = strict_client
    sign_up(client, "alice", email="alice@example.com")
    wait_for_mail(smtp, 1)
    new = client.post(
        "/users", json={"username": "carol", "password": PASSWORD, "email": "carol@example.com"}
    )
    taken = client.post(
        "/users", json={"username": "mallory", "password": PASSWORD, "email": "ALICE@example.com"}
    )
    assert (new.status_code, taken.status_code) == (201, 201)
    assert new.json().keys() == taken.json().keys()
    assert taken.json()["email_verified"] is False
    mails = wait_for_mail(smtp, 3)[1:]
    subjects = {mail.recipients[0]: mail.mail["Subject"] for mail in mails}
    assert subjects == {
        "carol@example.com": "Verify your email",
        "alice@example.com": "Someone tried to sign up to nimbus with your email",
    }
    # No account was made, and alice's is as it was.
    assert (
        client.post("/login", json={"username": "mallory", "password": PASSWORD}).status_code == 401
    )
    # A taken username stays a 409: usernames are public.
    again = client.post(
        "/users", json={"username": "alice", "password": PASSWORD, "email": "x@example.com"}
    )
    assert again.status_code == 409
    no_email = client.post("/users", json={"username": "dave", "password": PASSWORD})
    assert (no_email.status_code, no_email.json()["code"]) == (400, "email_required")


def test_sign_up_timing_does_not_tell_a_taken_email(strict_client: httpx.Client) -> None:
    client = strict_client
    sign_up(client, "alice", email="alice@example.com")
    new: list[float] = []
    taken: list[float] = []
    for i in range(4):
        for email, times in ((f"n{i}@example.com", new), ("alice@example.com", taken)):
            started = time.perf_counter()
            body = {"username": f"u{i}{len(times)}{email[0]}", "password": PASSWORD, "email": email}
            assert client.post("/users", json=body).status_code == 201
            times.append(time.perf_counter() - started)
    # Both hash the password and hand a mail to the queue; one also writes a row. Without the
    # hash a taken email would answer in a tenth of the time. The fastest of each are compared:
    # a busy machine only ever adds time.
    ratio = min(taken) / min(new)
    assert 1 / 3 < ratio < 3, (new, taken)
