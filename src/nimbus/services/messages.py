"""The message board: anyone reads, signed-in users post."""

from nimbus.domain.ids import new_id
from nimbus.domain.messages import Message
from nimbus.domain.paging import Page
from nimbus.domain.principals import Principal
from nimbus.services.clock import Clock, utc_now
from nimbus.services.reads import read_only
from nimbus.services.throttle import Limit, Throttle
from nimbus.storage.base import MessageStore


class MessageService:
    def __init__(
        self, store: MessageStore, *, throttle: Throttle, limit: Limit, clock: Clock = utc_now
    ) -> None:
        self._store = store
        self._throttle = throttle
        self._limit = limit
        self._clock = clock

    def post(self, author: Principal, text: str) -> Message:
        """Post as `author`; RateLimited past the author's allowance."""
        self._throttle.take((self._limit, author.user_id))
        message = Message(
            id=new_id(),
            author_id=author.user_id,
            author=author.username,
            text=text,
            created_at=self._clock(),
        )
        self._store.add(message)
        return message

    @read_only
    def list(self, *, limit: int, cursor: str | None) -> Page[Message]:
        return self._store.list(limit=limit, cursor=cursor)
