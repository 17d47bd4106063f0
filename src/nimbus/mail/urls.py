"""NIMBUS_MAIL_URL read into what each sender needs, and NIMBUS_PUBLIC_URL into links.

Only the URL is read here: nothing connects, and nothing heavier than urllib.parse is
imported, so that the settings can refuse a bad URL at start-up in a line.

    (unset), file://             the outbox: <data dir>/outbox/, one .eml file per mail
    file:///path/to/folder       the outbox in another folder
    smtp://[user:pass@]host[:port][?tls=starttls|none][&ca_file=/path.pem]
    smtps://[user:pass@]host[:port][?ca_file=/path.pem]
    ses://[?region=R][&endpoint_url=http://HOST:PORT][&configuration_set=NAME]

smtp:// upgrades with STARTTLS (port 587) unless its host is a loopback address, where it
speaks plain SMTP (port 25) by default: a relay or a mail catcher on the same machine.
`tls=none` to any other host is allowed only without credentials: nimbus never sends a
password in clear text over a network. Certificates are always verified (against the
system's, or `ca_file`'s); there is no option to skip that.
"""

import ipaddress
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import quote, unquote, urlencode, urlsplit

SCHEMES = ("smtp", "smtps", "ses", "file")
_SMTP_PORTS = {"starttls": 587, "none": 25, "implicit": 465}
_SMTP_PARAMETERS = {"smtp": {"tls", "ca_file"}, "smtps": {"ca_file"}}
_SES_PARAMETERS = {"region", "endpoint_url", "configuration_set"}


# NamedTuples, not dataclasses: the settings import this module, and a dataclass costs a
# cold start a millisecond to make.
class SmtpUrl(NamedTuple):
    host: str
    port: int
    tls: Literal["starttls", "none", "implicit"]
    username: str | None
    password: str | None
    ca_file: str | None

    def __repr__(self) -> str:  # never the password
        return f"SmtpUrl({self.host}:{self.port}, tls={self.tls}, user={self.username is not None})"


class SesUrl(NamedTuple):
    region: str | None
    endpoint_url: str | None
    configuration_set: str | None


class OutboxUrl(NamedTuple):
    folder: Path | None  # None: <data dir>/outbox


MailUrl = SmtpUrl | SesUrl | OutboxUrl


def parse_mail_url(url: str | None) -> MailUrl:
    """What `url` asks for; ValueError, in one line that never repeats a password, if it is
    not a mail URL nimbus can use."""
    if not url:
        return OutboxUrl(None)
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("a mail URL may not hold spaces or control characters")
    scheme = url.partition(":")[0].lower()
    if scheme not in SCHEMES or not url[len(scheme) :].startswith("://"):
        known = ", ".join(f"{name}://" for name in SCHEMES)
        if scheme.isascii() and scheme.isalnum() and len(scheme) <= 12:
            raise ValueError(f"unsupported mail URL scheme {scheme!r} (expected {known})")
        # Not echoed: what precedes the first colon may be a user and part of a password.
        raise ValueError(f"not a mail URL (expected {known})")
    userinfo, at, _ = url[len(scheme) + 3 :].rpartition("@")
    if at and any(c in userinfo for c in "/?#"):
        # urllib would split such a password into a path or a query, and the errors below
        # would quote a piece of it.
        raise ValueError(
            f"{scheme}:// user and password must be percent-encoded (a / ? # or @ in them)"
        )
    parts = urlsplit(url)
    if parts.fragment:
        raise ValueError(f"{scheme}:// URLs take no #fragment")
    query = _query(parts.query, scheme)
    if scheme == "file":
        return _outbox(parts.netloc, parts.path, query)
    if scheme == "ses":
        return _ses(parts.netloc, parts.path, query)
    return _smtp(scheme, url, query)


def redact_url(url: str) -> str:
    """`url` without its credentials, fit for a log line or an error: `smtp://***@host:587`.
    Everything up to the last @ goes, so a password with a stray @ or / goes whole too."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return scheme + sep + rest


def check_public_url(value: str) -> str:
    """NIMBUS_PUBLIC_URL, or a request's base URL: an http(s) URL with a host and no query,
    fragment or credentials. Returned without its trailing slash."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a public URL may not hold spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        raise ValueError(f"{value[:80]!r} is not a URL with a valid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value[:80]!r} is not an http:// or https:// URL with a host")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError("a public URL takes no ?query or #fragment")
    if "@" in parts.netloc:
        raise ValueError("a public URL takes no user or password")
    return value.rstrip("/")


def link(base: str, path: str, *, fragment: str | None = None, **query: str) -> str:
    """An absolute link for a mail: `base` (NIMBUS_PUBLIC_URL, else the request's base URL)
    joined with `path`, the query's values percent-encoded.

    `link("https://app.example", "/", fragment="reset", token=t)` is
    `https://app.example/?token=...#reset`.
    """
    root = check_public_url(base)
    if "?" in path or "#" in path:
        raise ValueError("give the query as keywords and the fragment as fragment=")
    url = root + quote("/" + path.lstrip("/"), safe="/:@!$&'()*+,;=-._~")
    if query:
        url += "?" + urlencode(query, quote_via=quote, safe="")
    if fragment is not None:
        url += "#" + quote(fragment, safe="/:@!$&'()*+,;=-._~?")
    return url


def reaches_people(url: str) -> bool:
    """Whether mail sent through `url` leaves this machine (SES, SMTP to another host), so
    that its links must name the service's public address; the outbox and a relay or mail
    catcher on this machine are for development."""
    parsed = parse_mail_url(url)
    return isinstance(parsed, SesUrl) or (
        isinstance(parsed, SmtpUrl) and not is_loopback(parsed.host)
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _query(query: str, scheme: str) -> dict[str, str]:
    known = _SES_PARAMETERS if scheme == "ses" else _SMTP_PARAMETERS.get(scheme, set())
    values: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name, value = unquote(name), unquote(value)
        if name not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise ValueError(f"unknown {scheme}:// parameter {name[:40]!r} (allowed: {allowed})")
        if name in values:
            raise ValueError(f"the {scheme}:// parameter {name!r} is given twice")
        if not value:
            raise ValueError(f"the {scheme}:// parameter {name!r} is empty")
        values[name] = value
    return values


def _outbox(netloc: str, path: str, query: dict[str, str]) -> OutboxUrl:
    if netloc:
        raise ValueError("file:// takes no host: file:// (the data dir's outbox) or file:///path")
    if not path:
        return OutboxUrl(None)
    return OutboxUrl(Path(unquote(path)))


def _ses(netloc: str, path: str, query: dict[str, str]) -> SesUrl:
    if netloc or path.strip("/"):
        raise ValueError("ses:// takes no host or path: ses://?region=R[&endpoint_url=...]")
    region = query.get("region")
    if region is not None and not (
        region.replace("-", "").isalnum() and region.isascii() and len(region) <= 32
    ):
        raise ValueError(f"ses:// region {region[:40]!r} is not an AWS region name")
    endpoint = query.get("endpoint_url")
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError("ses:// endpoint_url must be an http(s) URL with a host")
        if "@" in parts.netloc:
            raise ValueError("ses:// endpoint_url takes no user or password")
    configuration_set = query.get("configuration_set")
    if configuration_set is not None and not (
        len(configuration_set) <= 64
        and configuration_set.isascii()
        and configuration_set.replace("-", "").replace("_", "").isalnum()
    ):
        raise ValueError("ses:// configuration_set must be letters, digits, - and _")
    return SesUrl(region, endpoint, configuration_set)


def _smtp(scheme: str, url: str, query: dict[str, str]) -> SmtpUrl:
    parts = urlsplit(url)
    if parts.path.strip("/"):
        raise ValueError(f"{scheme}:// takes no path: {scheme}://user:pass@host:port")
    host = parts.hostname
    if not host:
        raise ValueError(f"{scheme}:// needs a host: {scheme}://user:pass@host:port")
    try:
        port = parts.port
    except ValueError:
        # Not chained: urllib's error quotes the whole authority, the password with it.
        raise ValueError(f"{scheme}:// port is not a number from 1 to 65535") from None
    if port == 0:
        raise ValueError(f"{scheme}:// port is not a number from 1 to 65535")
    tls: Literal["starttls", "none", "implicit"]
    if scheme == "smtps":
        tls = "implicit"
    else:
        wanted = query.get("tls", "none" if is_loopback(host) else "starttls")
        if wanted not in ("starttls", "none"):
            raise ValueError(
                f"smtp:// tls must be starttls or none, not {wanted[:20]!r} "
                "(smtps:// is implicit TLS)"
            )
        tls = "starttls" if wanted == "starttls" else "none"
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError(f"{scheme}:// has a password but no user")
    if username and tls == "none" and not is_loopback(host):
        raise ValueError(
            f"smtp:// with tls=none would send the password to {host} in clear text: "
            "use tls=starttls or smtps://"
        )
    ca_file = query.get("ca_file")
    if ca_file is not None and tls == "none":
        raise ValueError("smtp:// ca_file has no use with tls=none")
    return SmtpUrl(host, port or _SMTP_PORTS[tls], tls, username or None, password, ca_file)
