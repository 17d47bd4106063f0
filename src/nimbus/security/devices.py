"""Device cookies (OWASP's defence against lockout by strangers): a client that has logged in
to an account before shows it, and is counted apart from every other client of the account.

A cookie is `<device id>.<expiry>.<mac>`, the MAC binding it to one account; nothing is stored.
"""

import secrets
from datetime import datetime, timedelta

from nimbus.security.macs import Mac

COOKIE = "nimbus_device"
TTL = timedelta(days=180)


class DeviceCookies:
    def __init__(self, mac: Mac, *, ttl: timedelta = TTL) -> None:
        self._mac = mac
        self.ttl = ttl

    def issue(self, user_id: str, now: datetime, device_id: str | None = None) -> str:
        device_id = device_id or secrets.token_urlsafe(12)
        expires = int((now + self.ttl).timestamp())
        return f"{device_id}.{expires}.{self._mac.sign(f'{user_id}.{device_id}.{expires}')}"

    def device_of(self, cookie: str | None, user_id: str, now: datetime) -> str | None:
        """The device id of a valid, unexpired cookie issued for this account, else None."""
        if not cookie or len(cookie) > 200:
            return None
        device_id, _, rest = cookie.partition(".")
        expires, _, mac = rest.partition(".")
        if not (device_id and expires.isdecimal() and len(expires) <= 12 and mac):
            return None
        if not self._mac.verify(f"{user_id}.{device_id}.{expires}", mac):
            return None
        return device_id if int(expires) > now.timestamp() else None
