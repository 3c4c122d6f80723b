"""API tokens: each token belongs to one user with one tier and area (scope), optionally expiring.

Tokens file (YAML), storing only SHA-256 hashes of the tokens:

    tokens:
      - {user: li.county, tier: county, area: "350521", sha256: "<hex of sha256(token)>"}
      - {user: temp.audit, tier: city, area: "350500", sha256: "<hex>",
         expires: "2026-06-30T18:00:00+08:00"}

A county user sees and acts only on alerts of enterprises in its county; a city user on its
city's counties; a province user on its province; an enterprise user on its own enterprise.
`expires` (RFC 3339, with its UTC offset) ends a token at that instant; without it a token
lives until it is removed from the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alerting.alerts import Actor
from alerting.policy import TierName
from hazardwatch.errors import HazardwatchError
from hazardwatch.plant.loader import validate_file


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token, as stored in the tokens file."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenEntry(BaseModel):
    """One token's owner, scope and optional expiry."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    user: str = Field(min_length=1)
    tier: TierName
    area: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    expires: AwareDatetime | None = None


class TokensFile(BaseModel):
    """The tokens file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tokens: tuple[TokenEntry, ...] = ()


class TokenRefusedError(HazardwatchError):
    """A bearer token that grants nothing; `reason` is `missing`, `unknown` or `expired`."""

    def __init__(self, reason: str, message: str, user: str | None = None) -> None:
        self.reason = reason
        self.user = user  # the owner of an expired token (never the token itself)
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _Grant:
    actor: Actor
    expires_ms: int | None
    expires_text: str | None


class TokenStore:
    """Token → Actor lookup by hash (no token is kept in clear)."""

    def __init__(self, entries: tuple[TokenEntry, ...]) -> None:
        self._by_hash = {e.sha256: _grant(e) for e in entries}

    @classmethod
    def load(cls, path: str | Path) -> TokenStore:
        """Read a tokens file; ConfigFileError names file and line."""
        loaded, _root, _file = validate_file(Path(path), TokensFile)
        return cls(loaded.tokens)

    def authenticate(self, token: str, now_ms: int) -> Actor:
        """The token's owner at `now_ms` (epoch ms); TokenRefusedError when it grants nothing.

        A token is valid strictly before its `expires` instant.
        """
        if not token:
            raise TokenRefusedError("missing", "missing bearer token")
        grant = self._by_hash.get(token_hash(token))
        if grant is None:
            raise TokenRefusedError("unknown", "unknown bearer token")
        if grant.expires_ms is not None and now_ms >= grant.expires_ms:
            raise TokenRefusedError(
                "expired", f"bearer token expired at {grant.expires_text}", grant.actor.user
            )
        return grant.actor


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _grant(entry: TokenEntry) -> _Grant:
    actor = Actor(entry.user, entry.tier, entry.area)
    if entry.expires is None:
        return _Grant(actor, None, None)
    # Integer arithmetic, rounded up: valid while now_ms < expires_ms ⟺ now < expires exactly.
    expires_ms = -((_EPOCH - entry.expires) // _MS)
    text = entry.expires.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return _Grant(actor, expires_ms, text)
