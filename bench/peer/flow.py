"""The Node-RED flow of the peer comparison, generated from the same plant file hazardwatch runs.

    mqtt in (QoS 1) → json → function "thresholds" ─┬→ function "batch writes" → influxdb batch
                                                    └→ http request (POST, signed) → receiver

The function bodies are the JavaScript files next to this module; the limit table they use is
built from `plant.resolved_tags()` (hazardwatch's own resolution of defaults), so both systems
check exactly the same limits and deadbands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hazardwatch.plant.model import Plant

HERE = Path(__file__).resolve().parent


def limit_table(plant: Plant) -> dict[str, dict[str, Any]]:
    """tag → {source, enterprise, unit, quantity, deadband, and each limit key (L, LL, H, HH):
    value}: the InfluxDB tags of hazardwatch's `reading_v1` too, so that both systems store the
    same series and InfluxDB does the same work for each."""
    table: dict[str, dict[str, Any]] = {}
    for tag in plant.resolved_tags():
        row: dict[str, Any] = {"source": tag.source, "enterprise": tag.enterprise,
                               "unit": tag.unit, "quantity": str(tag.quantity),
                               "deadband": tag.deadband}  # fmt: skip
        row.update({limit.key: limit.value for limit in tag.limits})
        table[tag.id] = row
    return table


def flows(
    plant: Plant, *, topic_filter: str, client_id: str, database: str, webhook_url: str,
    mqtt_port: int = 1883, influx_port: int = 8086,
) -> list[dict[str, Any]]:  # fmt: skip
    """flows.json for Node-RED 4: one tab, the broker and InfluxDB 1.x config nodes."""
    on_start = (
        f'context.set("tags", {json.dumps(limit_table(plant), separators=(",", ":"))});\n'
        'context.set("active", {});\ncontext.set("pending", []);\n'
    )
    tab = "hw-peer"
    return [
        {"id": tab, "type": "tab", "label": "hazardwatch peer", "disabled": False},
        {"id": "broker", "type": "mqtt-broker", "name": "mosquitto", "broker": "127.0.0.1",
         "port": str(mqtt_port), "clientid": client_id, "autoConnect": True, "usetls": False,
         "protocolVersion": "5", "keepalive": "60", "cleansession": True,
         "autoUnsubscribe": True, "birthTopic": "", "closeTopic": "", "willTopic": "",
         "sessionExpiry": ""},
        {"id": "influx", "type": "influxdb", "hostname": "127.0.0.1", "port": str(influx_port),
         "protocol": "http", "database": database, "name": "influx 1.8", "usetls": False,
         "tls": "", "influxdbVersion": "1.x", "url": "", "timeout": "10",
         "rejectUnauthorized": True},
        {"id": "in", "type": "mqtt in", "z": tab, "name": "telemetry", "topic": topic_filter,
         "qos": "1", "datatype": "utf8", "broker": "broker", "nl": False, "rap": True, "rh": 0,
         "inputs": 0, "x": 100, "y": 100, "wires": [["json"]]},
        {"id": "json", "type": "json", "z": tab, "name": "", "property": "payload",
         "action": "obj", "pretty": False, "x": 250, "y": 100, "wires": [["thresholds"]]},
        {"id": "thresholds", "type": "function", "z": tab, "name": "thresholds",
         "func": (HERE / "threshold.js").read_text("utf-8"), "outputs": 2, "timeout": 0,
         "noerr": 0, "initialize": on_start, "finalize": "",
         "libs": [{"var": "crypto", "module": "crypto"}], "x": 400, "y": 100,
         "wires": [["batcher"], ["webhook"]]},
        {"id": "batcher", "type": "function", "z": tab, "name": "batch writes",
         "func": (HERE / "batcher.js").read_text("utf-8"), "outputs": 1, "timeout": 0,
         "noerr": 0, "initialize": 'context.set("pending", []);\n', "finalize": "",
         "libs": [], "x": 600, "y": 80, "wires": [["write"]]},
        {"id": "write", "type": "influxdb batch", "z": tab, "influxdb": "influx",
         "precision": "ms", "retentionPolicy": "", "name": "readings", "database": "",
         "precisionV18FluxV20": "ms", "retentionPolicyV18Flux": "", "org": "", "bucket": "",
         "x": 800, "y": 80, "wires": []},
        {"id": "webhook", "type": "http request", "z": tab, "name": "alarm webhook",
         "method": "POST", "ret": "txt", "paytoqs": "ignore", "url": webhook_url, "tls": "",
         "persist": True, "proxy": "", "insecureHTTPParser": False, "authType": "",
         "senderr": False, "headers": [], "x": 600, "y": 140, "wires": [[]]},
    ]  # fmt: skip


SETTINGS_JS = """// Written by bench/peer/nodered.py for one benchmark run.
module.exports = {
    flowFile: "flows.json",
    uiHost: "127.0.0.1",
    uiPort: %(port)d,
    httpAdminRoot: "/admin",
    httpNodeRoot: false,
    credentialSecret: false,
    functionExternalModules: true,
    functionTimeout: 0,
    externalModules: {autoInstall: false, palette: {allowInstall: false}},
    diagnostics: {enabled: false},
    runtimeState: {enabled: false},
    telemetry: {enabled: false},
    editorTheme: {projects: {enabled: false}},
    logging: {console: {level: "warn", metrics: false, audit: false}},
};
"""
