"""The keys access tokens are signed with, by key id (`kid`): the root key's own and those
`nimbus keys rotate` adds.

Key 0 is the root key itself, which signed every token before keys had ids; a token without a
`kid` is one of those. Each rotated key is 256 random bits, stored sealed under the root key
(a SecretBox of its own purpose, bound to its kid), so the store alone gives none away. Every
kid is a fingerprint of its key, never the key.

Each process reads the keys on first use and again once what it read is RELOAD seconds old.
A key's life follows from the keys' creation times alone, the same in every process:

    next       for its first PUBLISH seconds (RELOAD, and a margin for the write's own time and
               clocks a little apart): every process rereads the keys before it verifies a
               token signed after that, so none meets a kid it has not read;
    signing    from then until a newer key signs;
    verifying  while a token it signed may still be valid: for the token lifetime (the
               access-token TTL and the leeway) past the moment it stopped signing;
    retired    after that: a token naming it is refused, as one naming no key we have.

A key that does not open under this root key (the root key was replaced) is ignored, as
replacing the root key retires everything signed or sealed under it.

Under an asymmetric algorithm (ES256, EdDSA: nimbus.security.asymmetric) each key's bytes
yield its key pair, and its kid is a fingerprint over the bytes and the algorithm, so a token
of one algorithm never names a key of another. The public keys of every key that is next,
signing or verifying are what GET /.well-known/jwks.json publishes.
"""

import base64
import binascii
import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from nimbus.domain.errors import Unauthenticated, Unavailable
from nimbus.domain.signing_keys import KeyState, KeyStatus, SigningKey
from nimbus.security.secretbox import SecretBox
from nimbus.values import frozen

log = logging.getLogger(__name__)

SEALING_PURPOSE = "nimbus token signing key v1"
_KID_MESSAGE = b"nimbus key id v1"
HS256 = "HS256"
ALGORITHMS = (HS256, "ES256", "EdDSA")
KEY_BYTES = 32
RELOAD = 30.0  # seconds
MARGIN = 2.0  # seconds a new key waits past RELOAD before it signs
RETRY = 1.0  # seconds the keys read before serve after a failed reread, before another try

KeySource = bytes | Callable[[], bytes]
KeyList = Callable[[], Sequence[SigningKey]]


def key_id(key: bytes, algorithm: str = HS256) -> str:
    """A key's id: 96 bits of an HMAC under the key itself, which tell nothing of the key; for
    an asymmetric algorithm, over its name too. The store names each key by its HS256 id."""
    message = _KID_MESSAGE if algorithm == HS256 else _KID_MESSAGE + b" " + algorithm.encode()
    return base64.urlsafe_b64encode(hmac.digest(key, message, hashlib.sha256)[:12]).decode()


@frozen
class _Entry:
    kid: str
    key: bytes = field(repr=False)
    signer: Any = field(repr=False)  # the key itself (HS256), or its private key
    verifier: Any = field(repr=False)  # the key itself (HS256), or its public key
    jwk: dict[str, str] | None  # its public key (an asymmetric algorithm's)
    created: datetime | None  # None for key 0
    # POSIX times: when it starts signing, stops signing, and retires (infinite: not yet).
    starts: float
    ends: float
    retires: float


@frozen
class _Ring:
    entries: tuple[_Entry, ...]  # oldest first: key 0, then by creation
    by_kid: dict[str, _Entry]
    unusable: tuple[SigningKey, ...]
    fresh_until: float


class KeyRing:
    def __init__(
        self,
        root: KeySource,
        keys: KeyList | None = None,
        *,
        lifetime: timedelta,
        reload: float = RELOAD,
        clock: Callable[[], float] = time.time,
        algorithm: str = HS256,
    ) -> None:
        """`root` is the root key (or a function that reads it, called on first use); `keys`
        lists the rotated keys (none without it); `lifetime` is how long a token stays valid
        after it is signed (TTL and leeway); `algorithm` is the tokens' (ALGORITHMS)."""
        if algorithm not in ALGORITHMS:
            raise ValueError(f"{algorithm} is not one of {', '.join(ALGORITHMS)}")
        self.algorithm = algorithm
        self._root = root
        self._keys = keys
        self.lifetime = lifetime
        self.reload = reload
        self.publish = timedelta(seconds=reload + MARGIN)
        self._clock = clock
        self._box = SecretBox(self._root_key, purpose=SEALING_PURPOSE)
        self._opened: dict[str, bytes | None] = {}  # keys never change: each opened once
        self._pairs: dict[str, tuple[str, Any, Any, dict[str, str] | None]] = {}  # and derived
        self._ring: _Ring | None = None
        self._reading = threading.Lock()

    def signing_key(self, at: datetime) -> tuple[str, Any]:
        """The kid and key a token issued at `at` is signed with (a private key under an
        asymmetric algorithm)."""
        moment = at.timestamp()
        entries = self._current().entries
        signer = next((e for e in reversed(entries) if e.starts <= moment), entries[0])
        return signer.kid, signer.signer

    def verifying_key(self, kid: object, at: float) -> Any:
        """The key a token naming `kid` verifies with at `at` (POSIX time): the key itself, or
        its public key. A token without one (None) is key 0's, under HS256 alone (tokens from
        before key ids). Unauthenticated for a kid that names no key, or a retired one."""
        ring = self._current()
        if kid is None:
            entry: _Entry | None = ring.entries[0] if self.algorithm == HS256 else None
        else:
            entry = ring.by_kid.get(kid) if isinstance(kid, str) else None
        if entry is None or at >= entry.retires:
            raise Unauthenticated()
        return entry.verifier

    def public_keys(self) -> list[dict[str, str]]:
        """The public key of every key that is next, signing or verifying, as JWKs, oldest
        first; none under HS256, which has no public key."""
        now = self._clock()
        entries = self._current().entries
        return [e.jwk for e in entries if e.jwk is not None and now < e.retires]

    def kid_for(self, stored: SigningKey) -> str:
        """The kid the tokens a stored key signs carry (its stored kid under HS256)."""
        key = self._open(stored)
        return stored.kid if key is None else self._derived(key, stored.kid)[0]

    def statuses(self) -> list[KeyStatus]:
        """Every key, oldest first, with its state now, from the keys read afresh."""
        ring = self._current(afresh=True)
        now = self._clock()
        listed = [(e.created, _status(e, now)) for e in ring.entries]
        listed += [
            (k.created_at, KeyStatus(k.kid, KeyState.UNUSABLE, k.created_at)) for k in ring.unusable
        ]
        first = datetime.min.replace(tzinfo=UTC)
        return [status for _, status in sorted(listed, key=lambda pair: pair[0] or first)]

    def new_key(self, at: datetime) -> SigningKey:
        """A new random key, sealed, to be stored; it starts signing `publish` after `at`."""
        key = secrets.token_bytes(KEY_BYTES)
        kid = key_id(key)
        sealed = self._box.seal(base64.urlsafe_b64encode(key).decode(), context=kid)
        self._opened[kid] = key
        return SigningKey(kid=kid, sealed_key=sealed, created_at=at)

    def _current(self, *, afresh: bool = False) -> _Ring:
        ring = self._ring
        now = self._clock()
        if ring is not None and now < ring.fresh_until and not afresh:
            return ring
        # One thread rereads; the others go on meanwhile with the keys read before, if any.
        if not self._reading.acquire(blocking=ring is None or afresh):
            assert ring is not None
            return ring
        try:
            if self._ring is not ring and not afresh:  # another thread read them meanwhile
                assert self._ring is not None
                return self._ring
            self._ring = self._read(now, ring)
            return self._ring
        finally:
            self._reading.release()

    def _read(self, now: float, before: _Ring | None) -> _Ring:
        root = self._root_key()
        try:
            stored = list(self._keys()) if self._keys is not None else []
        except Unavailable as exc:
            if before is None:
                raise
            # The keys read before still hold: keys are only ever added, and each is
            # published RELOAD seconds before it signs.
            log.warning("Signing keys not reread (%s); trying again in %g s", exc.message, RETRY)
            return replace(before, fresh_until=now + RETRY)
        usable: list[tuple[SigningKey, bytes]] = []
        unusable: list[SigningKey] = []
        for stored_key in sorted(stored, key=lambda k: (k.created_at, k.kid)):
            opened = self._open(stored_key)
            if opened is None:
                unusable.append(stored_key)
            else:
                usable.append((stored_key, opened))
        publish, lifetime = self.publish.total_seconds(), self.lifetime.total_seconds()
        keys: list[tuple[str, bytes, datetime | None]] = [(key_id(root), root, None)]
        keys += [(k.kid, opened, k.created_at) for k, opened in usable]
        starts = [-math.inf] + [k.created_at.timestamp() + publish for k, _ in usable]
        entries = []
        for index, (stored_kid, key, created) in enumerate(keys):
            ends = starts[index + 1] if index + 1 < len(starts) else math.inf
            kid, signer, verifier, jwk = self._derived(key, stored_kid)
            entries.append(
                _Entry(
                    kid, key, signer, verifier, jwk, created, starts[index], ends, ends + lifetime
                )
            )
        return _Ring(
            entries=tuple(entries),
            by_kid={entry.kid: entry for entry in entries},
            unusable=tuple(unusable),
            fresh_until=now + self.reload,
        )

    def _derived(self, key: bytes, stored_kid: str) -> tuple[str, Any, Any, dict[str, str] | None]:
        """A key's kid, signing and verifying keys and JWK under the configured algorithm,
        derived once."""
        if self.algorithm == HS256:
            return stored_kid, key, key, None
        if stored_kid not in self._pairs:
            from nimbus.security.asymmetric import derive  # cryptography's, only where used

            kid = key_id(key, self.algorithm)
            pair = derive(key, self.algorithm, kid)
            self._pairs[stored_kid] = kid, pair.private, pair.public, pair.jwk
        return self._pairs[stored_kid]

    def _open(self, stored: SigningKey) -> bytes | None:
        if stored.kid not in self._opened:
            try:
                key: bytes | None = base64.urlsafe_b64decode(
                    self._box.open(stored.sealed_key, context=stored.kid)
                )
            except (ValueError, binascii.Error):
                key = None
            if key is None or len(key) != KEY_BYTES or key_id(key) != stored.kid:
                log.warning("Signing key %s does not open with the root key: ignored", stored.kid)
                key = None
            self._opened[stored.kid] = key
        return self._opened[stored.kid]

    def _root_key(self) -> bytes:
        if not isinstance(self._root, bytes):
            self._root = self._root()
        return self._root


def _status(entry: _Entry, now: float) -> KeyStatus:
    if now < entry.starts:
        state = KeyState.NEXT
    elif now < entry.ends:
        state = KeyState.SIGNING
    elif now < entry.retires:
        state = KeyState.VERIFYING
    else:
        state = KeyState.RETIRED
    return KeyStatus(
        kid=entry.kid,
        state=state,
        created_at=entry.created,
        signs_from=_time(entry.starts),
        signs_until=_time(entry.ends),
        retires_at=_time(entry.retires),
    )


def _time(moment: float) -> datetime | None:
    return datetime.fromtimestamp(moment, UTC) if math.isfinite(moment) else None
