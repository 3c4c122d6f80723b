"""SMS providers: request formats of Alibaba Cloud, Tencent Cloud and a generic HTTP gateway.

- **Alibaba Cloud** (`aliyun`): RPC-style `SendSms`, API version 2017-05-25, POST form body to
  `dysmsapi.aliyuncs.com`, signature version 1.0 (HMAC-SHA1): sort all parameters, percent-encode
  names and values per RFC 3986 (space → %20, `*` → %2A, `~` kept), join with `&`, string to
  sign = `POST&%2F&` + percent-encoded query, key = AccessKeySecret + `&`, base64 digest in the
  `Signature` parameter. Template variables are named (`TemplateParam` JSON).
- **Tencent Cloud** (`tencent`): `SendSms`, API version 2021-01-11, JSON POST, TC3-HMAC-SHA256:
  canonical request over `content-type;host;x-tc-action`, credential scope `date/sms/tc3_request`,
  derived key HMAC chain `TC3`+SecretKey → date → `sms` → `tc3_request`. Template variables are
  positional (`TemplateParamSet`).
- **Generic gateway** (`gateway`): JSON POST `{"to", "ref", "encoding", "segments": [...]}` with a
  bearer token; the text is split by `segment_sms` (70/67 UCS-2, 160/153 GSM-7).

Template variables have a provider limit (`ALIYUN_PARAM_MAX`, `TENCENT_PARAM_MAX`): a longer value
makes the provider refuse the whole message, permanently, so `fitted_params` cuts each value to
the limit before signing, ending a cut value with `…`. The reading (value and unit) is what a
warning SMS is for, so the `value` variable shortens the tag's name and keeps the reading.

Time (`now_s`) and the nonce are passed in, so requests are reproducible in tests. `SmsAdapter`
is the provider interface (`request`, `verdict`); `sms_adapter` picks the configured one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote, urlsplit

import orjson

from alerting.channels.base import HttpRequest, HttpResponse, Verdict, classify_status
from alerting.messages import Notice, format_value, segment_sms, sms_text, template_params
from alerting.policy import AliyunProvider, GatewayProvider, TencentProvider

TEMPLATE_ORDER = ("enterprise", "source", "colour", "value", "time", "action")
"""Order of the positional Tencent template variables ({1} … {6})."""

ALIYUN_PARAM_MAX = 35
"""Characters per variable of an Alibaba Cloud notification template: 35 unless the account had
the limit lifted (help.aliyun.com/zh/document_detail/3041859.html); a longer value is refused
with `isv.PARAM_LENGTH_LIMIT`."""
TENCENT_PARAM_MAX = 12
"""Characters per variable for Tencent Cloud (each Chinese character, letter, digit, punctuation
mark or space counts one): 12 for individually verified accounts, refused with
`InvalidParameterValue.TemplateParameterLengthLimit`; enterprise accounts have no per-variable
limit (tencentcloud.com/zh/document/product/382/40653), so 12 is the value that works for both."""
CUT_MARK = "…"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    kept = text[: max(limit - 1, 0)]
    clause = kept.rfind("，")  # end on a whole clause when that keeps at least half
    if clause + 1 >= limit // 2:
        kept = kept[: clause + 1]
    return kept + CUT_MARK


def fitted_params(notice: Notice, limit: int) -> dict[str, str]:
    """`template_params(notice)` with each value at most `limit` characters, a cut one ending in
    `…`; `value` gives up the tag's name before its condition and reading."""
    params = template_params(notice)
    fitted = {name: _cut(text, limit) for name, text in params.items()}
    first = notice.tags[0] if notice.tags else None
    if first is not None and len(params["value"]) > limit:
        tail = f" {first.condition} {format_value(first.value, first.unit)}"  # as template_params
        room = limit - len(tail)
        if room >= 2:  # at least one character of the name and the mark
            fitted["value"] = (_cut(first.name or first.tag, room) + tail).strip()
        elif len(tail.strip()) <= limit:  # the hazard source names the place already
            fitted["value"] = tail.strip()
    return fitted


def percent_encode(text: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud's signature wants it (`~` unreserved, space %20)."""
    return quote(text, safe="-_.~")


def aliyun_signature(secret: str, method: str, params: dict[str, str]) -> str:
    """Base64 HMAC-SHA1 signature (version 1.0) of `params` (without `Signature`)."""
    query = "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(query)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _domestic(phone: str) -> str:
    return phone[3:] if phone.startswith("+86") else phone.lstrip("+")


def aliyun_request(
    provider: AliyunProvider, secret: str, phone: str, notice: Notice, key: str, now_s: int,
    nonce: str, param_max: int = ALIYUN_PARAM_MAX,
) -> HttpRequest:  # fmt: skip
    """Signed `SendSms` POST for one phone number; variables cut to `param_max` characters."""
    params = {
        "AccessKeyId": provider.access_key_id,
        "Action": "SendSms",
        "Format": "JSON",
        "OutId": key[:64],
        "PhoneNumbers": _domestic(phone),
        "RegionId": provider.region_id,
        "SignName": provider.sign_name,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce,
        "SignatureVersion": "1.0",
        "TemplateCode": provider.template_code,
        "TemplateParam": orjson.dumps(fitted_params(notice, param_max)).decode(),
        "Timestamp": datetime.fromtimestamp(now_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": "2017-05-25",
    }
    params["Signature"] = aliyun_signature(secret, "POST", params)
    body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return HttpRequest("POST", provider.endpoint, headers, body.encode())


_ALIYUN_RETRY = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "isp.SYSTEM_ERROR",
                 "SignatureNonceUsed", "ServiceUnavailable"}  # fmt: skip


def aliyun_verdict(response: HttpResponse) -> Verdict:
    """`Code: OK` delivered; throttling and system errors retry; anything else is permanent."""
    try:
        code = str(orjson.loads(response.body).get("Code", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return classify_status(response)
    if code == "OK":
        return Verdict("delivered", "OK")
    if code in _ALIYUN_RETRY or response.status >= 500:
        return Verdict("retry", code)
    return Verdict("permanent", code or f"HTTP {response.status}")


def _hmac256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


TC3_SIGNED_HEADERS = ("content-type", "host", "x-tc-action")


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    service: str,
    headers: Mapping[str, str],
    body: bytes,
    now_s: int,
    signed: tuple[str, ...] = TC3_SIGNED_HEADERS,
) -> str:
    """The TC3-HMAC-SHA256 `Authorization` header of a POST to `/` (Tencent Cloud API 3.0).

    `signed` names the headers taken into the canonical request (lower-case names and values,
    sorted); `service` is the product (`sms`) and `now_s` the `X-TC-Timestamp`.
    """
    lower = {k.lower(): v.strip().lower() for k, v in headers.items()}
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{lower[name]}\n" for name in names)
    signed_headers = ";".join(names)
    canonical = "\n".join(
        ["POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(body).hexdigest()]
    )
    date = datetime.fromtimestamp(now_s, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(now_s), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac256(_hmac256(_hmac256(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={sig}"
    )


def tencent_request(
    provider: TencentProvider, secret_key: str, phone: str, notice: Notice, key: str, now_s: int,
    param_max: int = TENCENT_PARAM_MAX,
) -> HttpRequest:  # fmt: skip
    """Signed `SendSms` POST for one phone number; variables cut to `param_max` characters."""
    params = fitted_params(notice, param_max)
    number = phone if phone.startswith("+") else f"+86{phone}"
    body = orjson.dumps(
        {
            "PhoneNumberSet": [number],
            "SmsSdkAppId": provider.sdk_app_id,
            "SignName": provider.sign_name,
            "TemplateId": provider.template_id,
            "TemplateParamSet": [params[name] for name in TEMPLATE_ORDER],
            "SessionContext": key,
        }
    )
    host = urlsplit(provider.endpoint).netloc
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Host": host,
        "X-TC-Action": "SendSms",
        "X-TC-Timestamp": str(now_s),
        "X-TC-Version": "2021-01-11",
        "X-TC-Region": provider.region,
    }
    headers["Authorization"] = tc3_authorization(
        provider.secret_id, secret_key, "sms", headers, body, now_s
    )
    return HttpRequest("POST", provider.endpoint, headers, body)


def tencent_verdict(response: HttpResponse) -> Verdict:
    """`SendStatusSet[0].Code == "Ok"` delivered; limits and internal errors retry."""
    try:
        data = orjson.loads(response.body)["Response"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return classify_status(response)
    error = data.get("Error")
    code = str(error.get("Code", "")) if error else ""
    if not error:
        statuses = data.get("SendStatusSet") or [{}]
        code = str(statuses[0].get("Code", ""))
        if code == "Ok":
            return Verdict("delivered", "Ok")
    retryable = code.startswith(("LimitExceeded", "InternalError", "RequestLimitExceeded"))
    return Verdict("retry" if retryable else "permanent", code or "no status")


def gateway_request(
    provider: GatewayProvider, token: str, phone: str, notice: Notice, key: str
) -> HttpRequest:
    """One JSON POST carrying the text's segments, in order."""
    text = sms_text(notice)
    segments = segment_sms(text)
    encoding = "gsm7" if len(text.encode("ascii", "ignore")) == len(text) else "ucs2"
    body = orjson.dumps({"to": phone, "ref": key, "encoding": encoding, "segments": segments})
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": key,
    }
    return HttpRequest("POST", provider.endpoint, headers, body)


class SmsAdapter(Protocol):
    """The provider interface: one provider's request for a phone, and its verdict."""

    def request(self, phone: str, notice: Notice, key: str, now_s: int) -> HttpRequest:
        """The signed request sending `notice` to `phone`; `key` is the idempotency key."""

    def verdict(self, response: HttpResponse) -> Verdict:
        """Delivered, retry or permanent, from the provider's answer."""


@dataclass(frozen=True, slots=True)
class AliyunSms:
    """Alibaba Cloud SMS; a fresh `SignatureNonce` per request (the API refuses a reused one)."""

    provider: AliyunProvider
    secret: str
    nonce: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    param_max: int = ALIYUN_PARAM_MAX

    def request(self, phone: str, notice: Notice, key: str, now_s: int) -> HttpRequest:
        """Signed `SendSms`."""
        return aliyun_request(self.provider, self.secret, phone, notice, key, now_s, self.nonce(),
                              self.param_max)  # fmt: skip

    def verdict(self, response: HttpResponse) -> Verdict:
        """By the answer's `Code`."""
        return aliyun_verdict(response)


@dataclass(frozen=True, slots=True)
class TencentSms:
    """Tencent Cloud SMS."""

    provider: TencentProvider
    secret: str
    param_max: int = TENCENT_PARAM_MAX

    def request(self, phone: str, notice: Notice, key: str, now_s: int) -> HttpRequest:
        """Signed `SendSms`."""
        return tencent_request(self.provider, self.secret, phone, notice, key, now_s,
                               self.param_max)  # fmt: skip

    def verdict(self, response: HttpResponse) -> Verdict:
        """By `SendStatusSet[0].Code` or the error code."""
        return tencent_verdict(response)


@dataclass(frozen=True, slots=True)
class GatewaySms:
    """A generic HTTP SMS gateway."""

    provider: GatewayProvider
    token: str

    def request(self, phone: str, notice: Notice, key: str, now_s: int) -> HttpRequest:
        """The segments as one JSON POST."""
        return gateway_request(self.provider, self.token, phone, notice, key)

    def verdict(self, response: HttpResponse) -> Verdict:
        """By HTTP status."""
        return classify_status(response)


def sms_adapter(
    provider: AliyunProvider | TencentProvider | GatewayProvider, secret: Callable[[str], str]
) -> SmsAdapter:
    """The adapter of a configured provider; `secret(env_name)` looks its credential up."""
    if isinstance(provider, AliyunProvider):
        return AliyunSms(provider, secret(provider.access_key_secret_env))
    if isinstance(provider, TencentProvider):
        return TencentSms(provider, secret(provider.secret_key_env))
    return GatewaySms(provider, secret(provider.token_env))
