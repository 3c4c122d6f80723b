"""A sample `routing:` section for two counties of Quanzhou (泉州) — used by the tests, the
benchmark and docs/alerting.md. Receiver URLs are templated so tests point them at local servers.
"""

from __future__ import annotations

from typing import Any

import yaml

SAMPLE_ROUTING = """\
routing:
  delivery: {max_attempts: 6, backoff_initial_s: 0.2, backoff_max_s: 2, timeout_s: 2}
  sms_providers:
    aliyun: {kind: aliyun, endpoint: "{sms}/aliyun/", access_key_id: LTAI-test,
             access_key_secret_env: HW_ALIYUN_SECRET, sign_name: 安全监测, template_code: SMS_1}
    tencent: {kind: tencent, endpoint: "{sms}/tencent/", secret_id: AKID-test,
              secret_key_env: HW_TENCENT_KEY, sdk_app_id: "1400000001", sign_name: 安全监测,
              template_id: "100001"}
    gateway: {kind: gateway, endpoint: "{sms}/gateway/send", token_env: HW_GATEWAY_TOKEN}
  recipients:
    - id: qz-control-room
      name: 湄洲湾储运 控制室
      tier: enterprise
      area: QZ-PETRO
      channels:
        - {type: webhook, url: "{webhook}/enterprise", secret_env: HW_WEBHOOK_SECRET}
        - {type: sms, phone: "+8613800000001", provider: gateway}
    - id: huian-safety
      name: 惠安县应急管理局
      tier: county
      area: "350521"
      channels:
        - {type: webhook, url: "{webhook}/county", secret_env: HW_WEBHOOK_SECRET}
        - {type: sms, phone: "+8613800000002", provider: aliyun}
        - {type: command_platform, url: "{platform}", token_env: HW_PLATFORM_TOKEN}
    - id: huian-dq-desk
      name: 惠安县 数据质量值班
      tier: county
      area: "350521"
      channels:
        - {type: webhook, url: "{webhook}/county-dq", secret_env: HW_WEBHOOK_SECRET}
    - id: jinjiang-safety
      name: 晋江市应急管理局
      tier: county
      area: "350582"
      channels:
        - {type: webhook, url: "{webhook}/county-jj", secret_env: HW_WEBHOOK_SECRET}
    - id: quanzhou-safety
      name: 泉州市应急管理局
      tier: city
      area: "350500"
      channels:
        - {type: webhook, url: "{webhook}/city", secret_env: HW_WEBHOOK_SECRET}
        - {type: sms, phone: "+8613800000003", provider: tencent}
    - id: fujian-safety
      name: 福建省应急管理厅
      tier: province
      area: "350000"
      channels:
        - {type: webhook, url: "{webhook}/province", secret_env: HW_WEBHOOK_SECRET}
        - {type: command_platform, url: "{platform}", token_env: HW_PLATFORM_TOKEN}
  route:
    recipients: [qz-control-room, huian-safety, jinjiang-safety, quanzhou-safety, fujian-safety]
    group_by: [enterprise, source]
    routes:
      - matchers: ['type="data_quality"']
        recipients: [qz-control-room, huian-dq-desk, jinjiang-safety, quanzhou-safety,
                     fujian-safety]
      - matchers: ['type="alarm"']
        channels: [webhook]
"""


def sample_routing_yaml(
    webhook: str = "http://127.0.0.1:9/hooks",
    sms: str = "http://127.0.0.1:9/sms",
    platform: str = "http://127.0.0.1:9/platform/api/v1",
) -> str:
    """The sample policy file text with receiver base URLs filled in."""
    return (
        SAMPLE_ROUTING.replace("{webhook}", webhook)
        .replace("{sms}", sms)
        .replace("{platform}", platform)
    )


def sample_routing(**urls: str) -> dict[str, Any]:
    """The sample `routing:` mapping (see `sample_routing_yaml` for the URL keywords)."""
    data: dict[str, Any] = yaml.safe_load(sample_routing_yaml(**urls))["routing"]
    return data
