"""Bearer-token authentication and the per-role access rules.

Tokens are stored only as SHA-256 hex digests (``Settings.tokens``). A presented token is hashed
and compared with EVERY configured digest using :func:`hmac.compare_digest`, without stopping at
the first match, so the time taken says nothing about which (or whether a) digest matched.

Roles: ``admin`` (also the installer: all homes, may create and update homes and answer),
``dashboard`` (read-only, all homes), ``homeowner`` (read and answer their own home(s) only).
In ``environment="development"`` with no token configured at all the API is open: every caller
is an admin, and ``/readyz`` and the start-up log say so.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from service.settings import Settings

ROLES = ("admin", "dashboard", "homeowner")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role and, for homeowners, the homes their token belongs to.

    ``token_id`` tells tokens apart (for per-token limits) without holding the secret: the
    first 16 hex digits of its SHA-256 digest ("open" in open mode).
    """

    role: str
    homes: frozenset[str] = frozenset()
    via_cookie: bool = False
    open_mode: bool = False
    token_id: str = ""

    def can_read(self, home_id: str) -> bool:
        return self.role in ("admin", "dashboard") or home_id in self.homes

    def can_answer(self, home_id: str) -> bool:
        return self.role == "admin" or (self.role == "homeowner" and home_id in self.homes)

    @property
    def can_install(self) -> bool:
        return self.role == "admin"

    @property
    def all_homes(self) -> bool:
        return self.role in ("admin", "dashboard")


class TokenAuthenticator:
    """Resolves a presented bearer token to a :class:`Principal` (None: unknown token)."""

    def __init__(self, settings: Settings) -> None:
        tokens = settings.tokens
        entries: list[tuple[bytes, str, str | None]] = []
        entries += [(_digest_bytes(d), "admin", None) for d in tokens.admin_sha256]
        entries += [(_digest_bytes(d), "dashboard", None) for d in tokens.dashboard_sha256]
        for home_id, digests in tokens.homeowner_sha256.items():
            entries += [(_digest_bytes(d), "homeowner", home_id) for d in digests]
        self._entries = entries
        self.open_mode = settings.environment == "development" and not entries

    def authenticate(self, token: str | None, *, via_cookie: bool = False) -> Principal | None:
        """The principal of ``token``; in open mode every caller (even without one) is admin."""
        if self.open_mode:
            return Principal("admin", via_cookie=via_cookie, open_mode=True, token_id="open")
        if not token:
            return None
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        roles: set[str] = set()
        homes: set[str] = set()
        for digest, role, home_id in self._entries:  # no early exit: constant work per call
            if hmac.compare_digest(presented, digest):
                roles.add(role)
                if home_id is not None:
                    homes.add(home_id)
        for role in ROLES:  # the strongest role the token holds
            if role in roles:
                return Principal(
                    role, frozenset(homes), via_cookie=via_cookie, token_id=presented.hex()[:16]
                )
        return None


def _digest_bytes(hex_digest: str) -> bytes:
    try:
        raw = bytes.fromhex(hex_digest)
    except ValueError:
        raw = b""
    if len(raw) != hashlib.sha256().digest_size:
        raise ValueError(
            f"token digest {hex_digest[:12]!r}... is not a SHA-256 hex digest (64 hex characters);"
            " make one with `atlas token hash`"
        )
    return raw
