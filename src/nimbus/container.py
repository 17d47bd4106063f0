"""The wired services the entry points and the API hold (nimbus.bootstrap builds one)."""

from nimbus.calls import Run
from nimbus.mail import MailQueue
from nimbus.services.accounts import AccountService
from nimbus.services.audit import AuditTrail
from nimbus.services.auth import AuthService
from nimbus.services.credentials import CredentialService
from nimbus.services.factors import FactorChanges
from nimbus.services.keys import KeyService
from nimbus.services.messages import MessageService
from nimbus.services.mfa import SecondFactors
from nimbus.services.passkeys import Passkeys
from nimbus.services.products import ProductService
from nimbus.services.todos import TodoService
from nimbus.services.users import UserService
from nimbus.settings import Settings
from nimbus.storage.base import Storage
from nimbus.values import frozen

MAIL_CLOSE_TIMEOUT = 5.0  # seconds a closing worker waits for the mails still queued


@frozen
class Container:
    settings: Settings
    storage: Storage
    users: UserService
    auth: AuthService
    mfa: SecondFactors
    passkeys: Passkeys
    factor_changes: FactorChanges  # every change to mfa's and passkeys' factors goes here
    todos: TodoService
    messages: MessageService
    products: ProductService
    credentials: CredentialService
    keys: KeyService
    audit: AuditTrail
    accounts: AccountService
    mails: MailQueue
    # How the API runs its calls into the services (nimbus.calls): `await run(service.method,
    # ...)` in every route.
    run: Run

    def close(self) -> None:
        self.mails.close(timeout=MAIL_CLOSE_TIMEOUT)  # what waits is sent, within a bound
        self.storage.close()
