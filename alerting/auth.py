"""API tokens: each token belongs to one user with one tier and area (scope).

Tokens file (YAML), storing only SHA-256 hashes of the tokens:

    tokens:
      - {user: li.county, tier: county, area: "350521", sha256: "<hex of sha256(token)>"}

A county user sees and acts only on alerts of enterprises in its county; a city user on its
city's counties; a province user on its province; an enterprise user on its own enterprise.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from alerting.alerts import Actor
from alerting.policy import TierName
from hazardwatch.plant.loader import validate_file


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token, as stored in the tokens file."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenEntry(BaseModel):
    """One token's owner and scope."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    user: str = Field(min_length=1)
    tier: TierName
    area: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class TokensFile(BaseModel):
    """The tokens file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tokens: tuple[TokenEntry, ...] = ()


class TokenStore:
    """Token → Actor lookup by hash (no token is kept in clear)."""

    def __init__(self, entries: tuple[TokenEntry, ...]) -> None:
        self._by_hash = {e.sha256: Actor(e.user, e.tier, e.area) for e in entries}

    @classmethod
    def load(cls, path: str | Path) -> TokenStore:
        """Read a tokens file; ConfigFileError names file and line."""
        loaded, _root, _file = validate_file(Path(path), TokensFile)
        return cls(loaded.tokens)

    def actor(self, token: str) -> Actor | None:
        """The token's owner, or None for an unknown token."""
        return self._by_hash.get(token_hash(token))
