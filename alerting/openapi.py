"""The API's route table and its OpenAPI 3.1 document, generated from the same table.

`alerting/openapi.json` is this document written out (`python -m alerting.openapi > …`); a test
keeps the file equal to the generated one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from alerting.commands import AckCommand


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One route: method, path, summary, whether a token is needed, request body schema."""

    method: str
    path: str
    name: str
    summary: str
    auth: bool = True
    body: dict[str, Any] | None = None


_ALERT_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

ROUTES = (
    ApiRoute("GET", "/healthz", "health", "liveness and outbox counts", auth=False),
    ApiRoute("GET", "/api/v1/openapi.json", "openapi", "this document", auth=False),
    ApiRoute("GET", "/api/v1/alerts", "list_alerts",
             "active alerts in the caller's scope, with deadlines"),
    ApiRoute("GET", "/api/v1/alerts/{id}", "get_alert",
             "one alert with its history, deliveries and every delivery attempt (audit)"),
    ApiRoute("POST", "/api/v1/alerts/{id}/ack", "acknowledge",
             "acknowledge (确认); the alarms are acknowledged in the engine too"),
    ApiRoute("POST", "/api/v1/alerts/{id}/feedback", "feedback",
             "record cause and measures (原因和措施)",
             body={"type": "object", "required": ["cause", "measures"],
                   "properties": {"cause": {"type": "string", "minLength": 1},
                                  "measures": {"type": "string", "minLength": 1}}}),
    ApiRoute("POST", "/api/v1/alerts/{id}/clear", "clear",
             "clearance (消警): normal, feedback recorded, orange/red by the confirming regulator"),
    ApiRoute("POST", "/api/v1/alerts/{id}/shelve", "shelve",
             "shelve/silence: no reminders or escalation until the expiry",
             body={"type": "object", "required": ["duration_s"],
                   "properties": {"duration_s": {"type": "number", "exclusiveMinimum": 0,
                                                 "maximum": 604800},
                                  "reason": {"type": "string"}}}),
)  # fmt: skip

_ERRORS = {
    "401": {"description": "missing, unknown or expired bearer token"},
    "404": {"description": "no such alert in the caller's scope"},
    "409": {"description": "refused by the life-cycle (code: not_normal, no_feedback, "
            "needs_regulator, cleared)"},
    "400": {"description": "bad request body"},
}  # fmt: skip


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the alerts API."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        op: dict[str, Any] = {
            "operationId": route.name,
            "summary": route.summary,
            "responses": {"200": {"description": "ok",
                                  "content": {"application/json": {"schema": {}}}}},
        }  # fmt: skip
        if "{id}" in route.path:
            op["parameters"] = [_ALERT_ID]
        if route.auth:
            op["security"] = [{"bearer": []}]
            op["responses"].update(_ERRORS)
        if route.body is not None:
            content = {"application/json": {"schema": route.body}}
            op["requestBody"] = {"required": True, "content": content}
        if route.name == "acknowledge":
            example = AckCommand("A-1", "QZ-PETRO", "QZ-TF1", ("T101-LS",), "li", 0).to_dict()
            op["responses"]["200"]["content"]["application/json"]["example"] = {"command": example}
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "hazardwatch alerts API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


if __name__ == "__main__":
    print(json.dumps(openapi_document(), ensure_ascii=False, indent=2, sort_keys=True))
