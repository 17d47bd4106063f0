"""Messages: seed 003's board, one public list of what signed-in users post."""

from datetime import datetime

from nimbus.values import frozen

TEXT_MAX_LENGTH = 1000
PAGE_DEFAULT = 20


@frozen
class Message:
    id: str  # UUIDv7: the board lists newest first by id
    author_id: str
    author: str  # the author's username when the message was posted
    text: str  # as the author wrote it; whoever shows it escapes it
    created_at: datetime
