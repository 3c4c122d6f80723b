"""Fixtures of the security suite: Mosquitto's TLS listener and its generated accounts."""

from __future__ import annotations

import pytest

from tests.security.plant import GATEWAYS, INGEST_ACCOUNT
from tests.services import Endpoints, port_answers


@pytest.fixture(scope="session")
def tls(endpoints: Endpoints) -> Endpoints:
    """The services, checked to have the TLS listener and every account; fails, never skips."""
    hint = "start it with `scripts/services up` (or `scripts/services restart mosquitto`)"
    if endpoints.mqtt_tls_port is None or endpoints.mqtt_tls_dir is None:
        pytest.fail(f"these services have no Mosquitto TLS listener; {hint}", pytrace=False)
    if not port_answers(endpoints.mqtt_host, endpoints.mqtt_tls_port):
        pytest.fail(f"Mosquitto's TLS listener is not on :{endpoints.mqtt_tls_port}; {hint}",
                    pytrace=False)  # fmt: skip
    accounts = endpoints.mqtt_credentials()
    missing = sorted({INGEST_ACCOUNT, *GATEWAYS} - set(accounts))
    if missing:
        pytest.fail(f"no TLS accounts for {missing}; {hint}", pytrace=False)
    return endpoints
