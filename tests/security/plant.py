"""The security suite's plant and policy: two enterprises in two counties, gateways with accounts.

The gateway ids are the MQTT accounts scripts/services creates on the TLS listener
(services/mosquitto/tls-gateways.txt): each may publish only its own enterprise's topics.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from hazardwatch.plant.loader import load_plant
from hazardwatch.plant.model import Plant

INGEST_ACCOUNT = "hazardwatch-ingest"
GATEWAYS = {"GW-SEC-A1": "SEC-A", "GW-SEC-A2": "SEC-A", "GW-SEC-B1": "SEC-B"}
HUIAN, JINJIANG, QUANZHOU = "350521", "350582", "350500"  # two counties of one city

PLANT_YAML = f"""\
version: 1
enterprises:
  - {{id: SEC-A, name: 惠安储运, region: "{HUIAN}", industry: tank_farm}}
  - {{id: SEC-B, name: 晋江化工, region: "{JINJIANG}", industry: hazardous_chemicals}}
gateways:
  - {{id: GW-SEC-A1, enterprise: SEC-A, interval_s: 1, tags: [A1-LT, A1-TT]}}
  - {{id: GW-SEC-A2, enterprise: SEC-A, interval_s: 1, tags: [A2-LT]}}
  - {{id: GW-SEC-B1, enterprise: SEC-B, interval_s: 1, tags: [B1-LT]}}
hazard_sources:
  - id: SEC-A-TF1
    enterprise: SEC-A
    name: 一号罐区
    kind: tank_farm
    grade: 1
    units:
      - id: A-TK1
        name: 1# 储罐
        tags:
          - {{id: A1-LT, name: 液位, quantity: level, unit: m, range: [0, 20],
             limits: {{H: 15, HH: 17}}, on_delay_s: 1, off_delay_s: 1, deadband: 0.1}}
          - {{id: A1-TT, name: 温度, quantity: temperature, unit: °C, range: [-20, 80],
             limits: {{H: 40}}, on_delay_s: 1, off_delay_s: 1}}
      - id: A-TK2
        name: 2# 储罐
        tags:
          - {{id: A2-LT, name: 液位, quantity: level, unit: m, range: [0, 20],
             limits: {{H: 15, HH: 17}}, on_delay_s: 1, off_delay_s: 1}}
  - id: SEC-B-TF1
    enterprise: SEC-B
    name: 原料罐区
    kind: tank_farm
    grade: 2
    units:
      - id: B-TK1
        name: 1# 储罐
        tags:
          - {{id: B1-LT, name: 液位, quantity: level, unit: m, range: [0, 20],
             limits: {{H: 15, HH: 17}}, on_delay_s: 1, off_delay_s: 1}}
"""

# Every secret is an environment variable named in the file, never a value in it.
SECRET_ENVS = ("HW_SEC_WEBHOOK_SECRET", "HW_SEC_ALIYUN_SECRET", "HW_SEC_TENCENT_KEY",
               "HW_SEC_GATEWAY_TOKEN", "HW_SEC_PLATFORM_TOKEN")  # fmt: skip


def policy_yaml(base: str) -> str:
    """Risk defaults plus routing to every channel kind, receivers under the URL `base`."""
    return f"""\
risk: {{}}
routing:
  delivery: {{max_attempts: 3, backoff_initial_s: 0.2, backoff_max_s: 1, timeout_s: 2}}
  sms_providers:
    aliyun: {{kind: aliyun, endpoint: "{base}/sms/aliyun/", access_key_id: LTAI-sec,
             access_key_secret_env: HW_SEC_ALIYUN_SECRET, sign_name: 安全监测,
             template_code: SMS_1}}
    tencent: {{kind: tencent, endpoint: "{base}/sms/tencent/", secret_id: AKID-sec,
              secret_key_env: HW_SEC_TENCENT_KEY, sdk_app_id: "1400000001",
              sign_name: 安全监测, template_id: "100001"}}
    gateway: {{kind: gateway, endpoint: "{base}/sms/gateway/send", token_env: HW_SEC_GATEWAY_TOKEN}}
  recipients:
    - id: sec-a-control-room
      name: 惠安储运 控制室
      tier: enterprise
      area: SEC-A
      channels:
        - {{type: webhook, url: "{base}/hooks/enterprise", secret_env: HW_SEC_WEBHOOK_SECRET}}
        - {{type: sms, phone: "+8613800000001", provider: gateway}}
    - id: huian-safety
      name: 惠安县应急管理局
      tier: county
      area: "{HUIAN}"
      channels:
        - {{type: webhook, url: "{base}/hooks/county", secret_env: HW_SEC_WEBHOOK_SECRET}}
        - {{type: sms, phone: "+8613800000002", provider: aliyun}}
        - {{type: command_platform, url: "{base}/platform/api/v1",
           token_env: HW_SEC_PLATFORM_TOKEN}}
    - id: jinjiang-safety
      name: 晋江市应急管理局
      tier: county
      area: "{JINJIANG}"
      channels:
        - {{type: webhook, url: "{base}/hooks/county-jj", secret_env: HW_SEC_WEBHOOK_SECRET}}
    - id: quanzhou-safety
      name: 泉州市应急管理局
      tier: city
      area: "{QUANZHOU}"
      channels:
        - {{type: webhook, url: "{base}/hooks/city", secret_env: HW_SEC_WEBHOOK_SECRET}}
        - {{type: sms, phone: "+8613800000003", provider: tencent}}
  route:
    recipients: [sec-a-control-room, huian-safety, jinjiang-safety, quanzhou-safety]
    group_by: [enterprise, source]
"""


def write_plant(folder: Path) -> Path:
    """The plant file in `folder`."""
    path = folder / "plant.yaml"
    path.write_text(PLANT_YAML, encoding="utf-8")
    return path


def write_policy(folder: Path, base: str) -> Path:
    """The policy file in `folder`, receivers under `base`."""
    path = folder / "policy.yaml"
    path.write_text(policy_yaml(base), encoding="utf-8")
    return path


def security_plant(folder: Path) -> Plant:
    """The plant, loaded through the real loader."""
    return load_plant(write_plant(folder))


def tokens_yaml(entries: dict[str, tuple[str, str, str]]) -> str:
    """A tokens file: clear token → (user, tier, area), stored as SHA-256 hashes only."""
    from alerting.auth import token_hash

    rows = [{"user": u, "tier": t, "area": a, "sha256": token_hash(token)}
            for token, (u, t, a) in entries.items()]  # fmt: skip
    return yaml.safe_dump({"tokens": rows}, allow_unicode=True)
