"""The wired services the entry points and the API hold (nimbus.bootstrap builds one)."""

from dataclasses import dataclass

from nimbus.services.auth import AuthService
from nimbus.services.credentials import CredentialService
from nimbus.services.messages import MessageService
from nimbus.services.products import ProductService
from nimbus.services.todos import TodoService
from nimbus.services.users import UserService
from nimbus.settings import Settings
from nimbus.storage.base import Storage


@dataclass(frozen=True, slots=True)
class Container:
    settings: Settings
    storage: Storage
    users: UserService
    auth: AuthService
    todos: TodoService
    messages: MessageService
    products: ProductService
    credentials: CredentialService
    # Whether a request may read the store on the event loop: true for SQLite, whose reads
    # cost microseconds, less than the hop to a worker thread; never for a networked store,
    # or with an OIDC provider whose keys may have to be fetched while authenticating.
    inline_reads: bool = False

    def close(self) -> None:
        self.storage.close()
