"""The source of truth as a directory: OpenLDAP, Active Directory, FreeIPA (ldap3).

One paged search (RFC 2696) under base_dn; each entry becomes one identity
whose attributes are the entry's requested attributes, renamed by
`attributes` (LDAP name -> identity name). A value is a string; attributes
listed in `multi_valued` keep all their values as a list, others keep the
first. Identity.row is the entry's position in the search (1-based), and a
rejected entry's reason starts with its DN.

Presets fill in what a directory kind always needs:
- "openldap": filter (objectClass=inetOrgPerson), key entryUUID, the usual
  inetOrgPerson attributes.
- "ad": filter (&(objectCategory=person)(objectClass=user)), key objectGUID
  (rendered as the GUID's text form), sAMAccountName and friends, and the
  canonical `active` attribute: "false" when userAccountControl has bit 2
  (ACCOUNTDISABLE) set, else "true".

A connection, TLS, bind or filter problem is a ConfigError (exit 2); the
bind password never appears in it.
"""

from __future__ import annotations

import ast
import base64
import logging
import math
import re
import ssl
import uuid
from dataclasses import replace
from urllib.parse import urlsplit

from ldap3 import BASE, LEVEL, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPInvalidFilterError

from provisioner.config import LdapSourceSettings
from provisioner.errors import ConfigError
from provisioner.model import SourceResult
from provisioner.secrets import redact
from provisioner.sources.rows import validate_rows

log = logging.getLogger(__name__)

ACTIVE = "active"  # the canonical attribute a source sets to "true"/"false"
_PAGED_OID = "1.2.840.113556.1.4.319"
_SCOPES = {"sub": SUBTREE, "one": LEVEL, "base": BASE}
_UAC_DISABLED = 0x2

PRESETS = {
    "openldap": {
        "filter": "(objectClass=inetOrgPerson)",
        "key": "entryUUID",
        "attributes": ("entryUUID", "uid", "cn", "sn", "givenName", "displayName", "mail",
                       "telephoneNumber", "mobile", "employeeNumber", "title", "departmentNumber"),
    },
    "ad": {
        "filter": "(&(objectCategory=person)(objectClass=user))",
        "key": "objectGUID",
        "attributes": ("objectGUID", "sAMAccountName", "userPrincipalName", "cn", "sn", "givenName",
                       "displayName", "mail", "telephoneNumber", "mobile", "employeeID",
                       "employeeNumber", "title", "department", "userAccountControl"),
    },
}


def read_ldap(settings: LdapSourceSettings) -> SourceResult:
    preset = PRESETS.get(settings.preset or "", {})
    key_attr = key_attribute(settings)
    wanted = list(dict.fromkeys([*preset.get("attributes", ()), *settings.attributes]))
    # the key may be named by its LDAP name or by its mapped name
    reverse = {v: k for k, v in settings.attributes.items()}
    wanted.append(reverse.get(key_attr, key_attr))
    wanted = list(dict.fromkeys(wanted))

    conn = connect(settings)
    try:
        entries = _paged_search(conn, settings, settings.filter or preset.get("filter", "(objectClass=*)"),
                                wanted)
    finally:
        conn.unbind()
    if not entries:
        log.warning("%s: the search returned no entries", _where(settings))

    multi = set(settings.multi_valued)
    dns: dict[int, str] = {}

    def records():
        for number, (dn, raw) in enumerate(entries, 1):
            dns[number] = dn
            attrs = {}
            for name, values in raw.items():
                texts = [v for v in (_text(name, value) for value in values) if v]
                if not texts:
                    continue
                out = settings.attributes.get(name, name)
                attrs[out] = texts if out in multi else texts[0]
            if settings.preset == "ad":
                control = attrs.get(settings.attributes.get("userAccountControl", "userAccountControl"))
                if isinstance(control, str) and control.lstrip("-").isdigit():
                    attrs[ACTIVE] = "false" if int(control) & _UAC_DISABLED else "true"
            yield number, attrs

    result = validate_rows(records(), key_attr, settings.required, settings.emails, unit="entry",
                           max_length=settings.max_value_length, multiline=settings.multiline)
    rejected = tuple(replace(r, reason=f"{dns.get(r.row, '?')}: {r.reason}") for r in result.rejected)
    # an entryUUID or objectGUID key tells a person nothing: plans name the entry by its DN
    identities = tuple(replace(i, label=dns.get(i.row)) for i in result.identities)
    return SourceResult(identities=identities, rejected=rejected,
                        attributes=provided_attributes(settings), multi_valued=frozenset(multi))


def provided_attributes(settings: LdapSourceSettings) -> frozenset[str]:
    """The identity attributes this source can give: what it requests, renamed by `attributes`."""
    preset = PRESETS.get(settings.preset or "", {})
    names = {settings.attributes.get(n, n) for n in (*preset.get("attributes", ()), *settings.attributes)}
    names.add(key_attribute(settings))
    if settings.preset == "ad":
        names.add(ACTIVE)
    return frozenset(names)


def key_attribute(settings: LdapSourceSettings) -> str:
    """The identity attribute holding the key: `key`, else the preset's (renamed by `attributes`)."""
    if settings.key:
        return settings.key
    preset_key = PRESETS[settings.preset]["key"]
    return settings.attributes.get(preset_key, preset_key)


def connect(settings: LdapSourceSettings) -> Connection:
    """An open, bound connection; ConfigError in one sentence if that fails."""
    where = _where(settings)
    parts = urlsplit(settings.url)
    secure = parts.scheme == "ldaps"
    tls = None
    if secure or settings.uses_start_tls:
        try:
            tls = Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT,
                      ca_certs_file=str(settings.ca_file) if settings.ca_file else None)
        except LDAPException:   # ldap3 checks only that the file exists and says just "invalid"
            raise ConfigError(f"{where}: ca_file: cannot read CA file {settings.ca_file}") from None
    server = Server(parts.hostname, port=parts.port or (636 if secure else 389), use_ssl=secure, tls=tls, get_info=NONE,
                    connect_timeout=settings.timeout)
    user = settings.bind_dn
    password = settings.password.reveal() if settings.password else None
    conn = Connection(server, user=user, password=password, read_only=True, auto_bind=False,
                      receive_timeout=max(1, math.ceil(settings.timeout)), raise_exceptions=False)
    step = "connect to"
    try:
        conn.open()
        if settings.uses_start_tls:
            step = "start TLS with"
            if not conn.start_tls():
                raise ConfigError(f"{where}: {settings.url} refused StartTLS: "
                                  f"{conn.result.get('description') or conn.result}")
        step = "bind to"
        if not conn.bind():
            who = f"as {user}" if user else "anonymously"
            raise ConfigError(f"{where}: bind {who} to {settings.url} was refused: "
                              f"{conn.result.get('description')} {conn.result.get('message') or ''}".rstrip())
    except LDAPException as exc:
        raise ConfigError(redact(f"{where}: cannot {step} {settings.url}: {_reason(exc)}")) from None
    return conn


def _paged_search(conn: Connection, settings: LdapSourceSettings, search_filter: str,
                  attributes: list[str]) -> list[tuple[str, dict]]:
    where = _where(settings)
    entries: list[tuple[str, dict]] = []
    cookie = None
    pages = 0
    while True:
        try:
            conn.search(settings.base_dn, search_filter, search_scope=_SCOPES[settings.scope],
                        attributes=attributes, paged_size=settings.page_size, paged_cookie=cookie)
        except LDAPInvalidFilterError:
            raise ConfigError(f"{where}.filter: {search_filter!r} is not a valid LDAP filter") from None
        except LDAPException as exc:
            raise ConfigError(redact(f"{where}: the search failed: {_reason(exc)}")) from None
        result = conn.result
        if result.get("result") not in (0, None):
            what = result.get("description")
            if what == "noSuchObject":
                raise ConfigError(f"{where}.base_dn: {settings.base_dn!r} does not exist on {settings.url}")
            read = len(entries) + sum(1 for e in conn.response or () if e.get("type") == "searchResEntry")
            _raise_for_limit(settings, what, result.get("message"), read)
            raise ConfigError(f"{where}: the search under {settings.base_dn!r} failed: {what} "
                              f"{result.get('message') or ''}".rstrip())
        pages += 1
        for entry in conn.response or ():
            if entry.get("type") == "searchResEntry":
                entries.append((entry["dn"], entry.get("raw_attributes") or {}))
        control = (result.get("controls") or {}).get(_PAGED_OID)
        cookie = control["value"]["cookie"] if control else None
        if not cookie:
            break
    log.info("%s: %d entries in %d pages", where, len(entries), pages)
    return entries


def _raise_for_limit(settings: LdapSourceSettings, what: str | None, message: str | None, read: int) -> None:
    """A server limit stopping a paged search, as the setting to change on either side."""
    who = settings.bind_dn or "anonymous binds"
    under = f"under {settings.base_dn!r}"
    detail = f"{what}: {message}" if message else what
    if what == "adminLimitExceeded":
        raise ConfigError(f"{_where(settings)}: the server refused pages of {settings.page_size} entries "
                          f"{under} ({detail}): lower page_size, or raise the server's page limit for "
                          f"{who} (OpenLDAP: size.pr in its limits)")
    if what == "sizeLimitExceeded":
        raise ConfigError(f"{_where(settings)}: the server stopped the search {under} at its size limit "
                          f"after {read} entries ({detail}): raise the limit for {who} on the server "
                          "(OpenLDAP: size.prtotal, or size.hard when that is unset), or narrow base_dn "
                          "or filter")


def _text(name: str, value: bytes) -> str | None:
    if name.lower() == "objectguid" and len(value) == 16:
        return str(uuid.UUID(bytes_le=value))
    try:
        return value.decode("utf-8").strip() or None
    except UnicodeDecodeError:
        # binary values (photos, SIDs) are kept printable rather than dropped
        return base64.b64encode(value).decode("ascii")


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    mismatch = _HOST_MISMATCH.search(text)
    if mismatch:
        return _host_mismatch(mismatch)
    ssl_error = re.search(r"\[SSL[^\]]*\] ([^(']+)", text)
    if ssl_error:
        return (f"TLS failed: {ssl_error.group(1).strip()} (set ca_file to the CA that signed "
                "the server's certificate)")
    if "refused" in text.lower() or "invalid server address" in text.lower():
        return f"connection refused or unreachable ({text.splitlines()[0]})"
    return text.splitlines()[0]


# ldap3's own host-name check: "certificate {<the peer certificate dict>} doesn't match any name in [...]"
_HOST_MISMATCH = re.compile(r"certificate (\{.*\}) doesn't match any name in (\[.*\])")


def _host_mismatch(match: re.Match) -> str:
    try:
        cert, asked = ast.literal_eval(match.group(1)), ast.literal_eval(match.group(2))
        names = [v for _, v in cert.get("subjectAltName", ())] or [
            v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
        host = asked[0]
    except (ValueError, SyntaxError, TypeError, IndexError, AttributeError):
        return "TLS failed: the server's certificate does not name the host in url"
    return (f"TLS failed: the server's certificate is for {', '.join(names) or 'no host name'}, not {host} "
            f"(use one of those names in url, or have the certificate reissued for {host})")


def _where(settings: LdapSourceSettings) -> str:
    return f"source {settings.name}" if settings.name else "source"
