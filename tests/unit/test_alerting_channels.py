"""Channel formats, SMS texts and the outbox's promises, without a network."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.channels.base import HttpResponse, classify_status, retry_after
from alerting.channels.sms import (
    aliyun_signature,
    aliyun_verdict,
    fitted_params,
    tc3_authorization,
    tencent_verdict,
)
from alerting.channels.webhook import WebhookRejectedError, verify_webhook, webhook_request
from alerting.messages import Notice, TagValue, segment_sms, sms_text, template_params
from alerting.outbox import Outbox
from alerting.policy import RateLimit
from alerting.retry import RateLimiter, backoff_s
from hazardwatch.types import RiskColour, Tier

NOTICE = Notice(
    kind="raise", alert_id="A-1", enterprise="QZ-PETRO", enterprise_name="湄洲湾储运",
    ts_ms=1_767_225_600_000, source="QZ-TF1", source_name="一号储罐区",
    colour=RiskColour.ORANGE, tags=(TagValue("T101-LS", "HH", 17.62, "m", "101#罐伺服液位"),),
    ack_due_ms=1_767_227_400_000, feedback_due_ms=1_767_240_000_000,
)  # fmt: skip


def test_sms_text_names_enterprise_source_colour_value_time_and_action() -> None:
    text = sms_text(NOTICE)
    assert text.startswith("【橙色预警】湄洲湾储运 一号储罐区：101#罐伺服液位 HH 17.62 m")
    assert "（01-01 08:00）" in text  # Beijing time
    assert "08:30前确认" in text and "12:00前反馈原因和措施" in text


def test_template_variables_are_cut_to_the_provider_limit_with_a_mark() -> None:
    whole = template_params(NOTICE)
    assert fitted_params(NOTICE, 100) == whole  # nothing to cut
    for limit in (35, 12):
        fitted = fitted_params(NOTICE, limit)
        assert all(len(v) <= limit for v in fitted.values()), fitted
        assert {n: v for n, v in fitted.items() if len(whole[n]) <= limit} == {
            n: v for n, v in whole.items() if len(v) <= limit
        }  # what fits is untouched
    # A cut text ends on a whole clause (when that keeps half of it) and says it was cut.
    assert len(whole["action"]) > 35
    cut = "请立即组织处置，加强监测并报告，01-01 08:30前确认，…"
    assert fitted_params(NOTICE, 35)["action"] == cut
    assert fitted_params(NOTICE, 12)["action"] == "请立即组织处置，…"
    # The reading survives: the tag's name gives way first, then goes.
    assert whole["value"] == "101#罐伺服液位 HH 17.62 m"
    assert fitted_params(NOTICE, 17)["value"] == "101#罐… HH 17.62 m"
    assert fitted_params(NOTICE, 12)["value"] == "HH 17.62 m"
    assert fitted_params(NOTICE, 8)["value"] == "101#罐伺服…"  # not even the reading fits


@pytest.mark.parametrize(("length", "parts"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_chinese_sms_segments_70_single_67_per_part(length: int, parts: int) -> None:
    segments = segment_sms("预" * length)
    assert len(segments) == parts
    assert "".join(segments) == "预" * length
    assert all(len(s) <= (70 if parts == 1 else 67) for s in segments)


def test_ascii_sms_uses_gsm_lengths() -> None:
    assert len(segment_sms("a" * 160)) == 1
    assert [len(s) for s in segment_sms("a" * 161)] == [153, 8]


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=400))
def test_segments_rejoin_and_respect_utf16_limits(text: str) -> None:
    segments = segment_sms(text)
    assert "".join(segments) == text
    if len(segments) > 1:
        assert all(sum(2 if ord(c) > 0xFFFF else 1 for c in s) <= 153 for s in segments)


def test_webhook_signature_verifies_and_rejects_tampering_and_replay() -> None:
    request = webhook_request("http://r/x", "s3cret", {"a": 1}, "key-1", now_s=1000)
    verify_webhook("s3cret", request.headers, request.body, now_s=1100)
    with pytest.raises(WebhookRejectedError, match="bad_signature"):
        verify_webhook("s3cret", request.headers, request.body + b" ", now_s=1100)
    with pytest.raises(WebhookRejectedError, match="bad_signature"):
        verify_webhook("other", request.headers, request.body, now_s=1100)
    with pytest.raises(WebhookRejectedError, match="stale_timestamp"):
        verify_webhook("s3cret", request.headers, request.body, now_s=1000 + 301)
    with pytest.raises(WebhookRejectedError, match="missing_header"):
        verify_webhook("s3cret", {}, request.body, now_s=1000)
    assert request.headers["Idempotency-Key"] == "key-1"


@pytest.mark.parametrize(
    ("status", "outcome"), [(200, "delivered"), (204, "delivered"), (429, "retry"),
                            (503, "retry"), (400, "permanent"), (401, "permanent")],
)  # fmt: skip
def test_http_verdicts(status: int, outcome: str) -> None:
    assert classify_status(HttpResponse(status, {}, b"")).outcome == outcome


def test_provider_verdicts() -> None:
    assert aliyun_verdict(HttpResponse(200, {}, b'{"Code":"OK"}')).outcome == "delivered"
    throttled = b'{"Code":"isv.BUSINESS_LIMIT_CONTROL"}'
    assert aliyun_verdict(HttpResponse(200, {}, throttled)).outcome == "retry"
    bad = b'{"Code":"isv.MOBILE_NUMBER_ILLEGAL"}'
    assert aliyun_verdict(HttpResponse(200, {}, bad)).outcome == "permanent"
    ok = b'{"Response":{"SendStatusSet":[{"Code":"Ok"}],"RequestId":"r"}}'
    assert tencent_verdict(HttpResponse(200, {}, ok)).outcome == "delivered"
    auth = b'{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure"}}}'
    assert tencent_verdict(HttpResponse(200, {}, auth)).outcome == "permanent"
    limit = b'{"Response":{"Error":{"Code":"RequestLimitExceeded"}}}'
    assert tencent_verdict(HttpResponse(200, {}, limit)).outcome == "retry"


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    waits = [backoff_s(n, 2.0, 300.0, 0.5, lambda: 0.0) for n in range(1, 10)]
    assert waits[:5] == [2, 4, 8, 16, 32] and waits[-1] == 300
    assert backoff_s(3, 2.0, 300.0, 0.5, lambda: 0.999) == pytest.approx(4.004)


def test_rate_limit_per_recipient() -> None:
    limiter = RateLimiter(lambda _r: RateLimit(count=2, per_s=60))
    assert [limiter.take("a", 0), limiter.take("a", 0)] == [0, 0]
    assert limiter.take("a", 0) == 30_001  # one token per 30 s
    assert limiter.take("b", 0) == 0  # another recipient has its own bucket
    assert limiter.take("a", 30_001) == 0


def test_failed_attempts_give_their_rate_limit_token_back() -> None:
    limiter = RateLimiter(lambda _r: RateLimit(count=2, per_s=3600))
    for _ in range(5):  # receiver down: five failed attempts in a row
        assert limiter.take("a", 0) == 0
        limiter.refund("a")
    assert [limiter.take("a", 0), limiter.take("a", 0)] == [0, 0]  # still two deliveries
    assert limiter.take("a", 0) > 0
    limiter.refund("a")
    limiter.refund("a")
    limiter.refund("a")  # never above the limit
    assert [limiter.take("a", 0), limiter.take("a", 0)] == [0, 0]
    assert limiter.take("a", 0) > 0


def test_outbox_is_idempotent_and_pending_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    box = Outbox(path)
    args = ("A-1", "r1", Tier.COUNTY, 0, "webhook", NOTICE.to_dict(), 5, 4)
    assert box.enqueue("k1", *args) is True
    assert box.enqueue("k1", *args) is False
    box.enqueue("k2", *args)
    [first, second] = box.due(10)
    box.delivered(first.id, 11, "HTTP 200", 3.0)
    box.failed(second.id, 11, "retry", "HTTP 503", 2.0, next_at_ms=100)
    box.close()
    again = Outbox(path)
    assert again.due(99) == []
    [pending] = again.due(100)
    assert pending.key == "k2" and pending.attempts == 1
    assert Notice.from_dict(pending.notice) == NOTICE
    assert [a["outcome"] for a in again.audit(pending.id)] == ["retry"]
    assert again.counts() == {"delivered": 1, "pending": 1}
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_aliyun_signer_reproduces_the_published_examples() -> None:
    # Alibaba Cloud's RPC signature walk-through and its SendSms example (secret + "&" as key)
    describe = {"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
                "SignatureMethod": "HMAC-SHA1",
                "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
                "SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z",
                "Version": "2014-05-26"}  # fmt: skip
    assert aliyun_signature("testsecret", "GET", describe) == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    send = {"AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
            "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou",
            "SignName": "阿里云短信测试专用", "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466", "SignatureVersion": "1.0",
            "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}',
            "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25"}  # fmt: skip
    assert aliyun_signature("testSecret", "GET", send) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_tc3_signer_reproduces_the_published_example() -> None:
    # Tencent Cloud API 3.0 signature v3 walk-through: CVM DescribeInstances at 1551113065
    body = (b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], '
            b'"Name": "instance-name"}]}')  # fmt: skip
    headers = {"Content-Type": "application/json; charset=utf-8",
               "Host": "cvm.tencentcloudapi.com"}  # fmt: skip
    authorization = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm",
        headers, body, 1551113065, signed=("content-type", "host"),
    )  # fmt: skip
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT",
          "date": "Wed, 21 Oct 2015 07:28:00 GMT"}, 30.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, None),  # no Date to read it against
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_retry_after_seconds_or_http_date(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(headers) == seconds
    verdict = classify_status(HttpResponse(429, headers, b""))
    assert verdict.outcome == "retry" and verdict.retry_after_s == seconds


def test_rate_limit_bucket_remembers_sends_before_a_restart() -> None:
    sent = {"a": 2, "b": 0}
    windows: list[tuple[str, int]] = []

    def sent_since(recipient: str, since_ms: int) -> int:
        windows.append((recipient, since_ms))
        return sent[recipient]

    limiter = RateLimiter(lambda _r: RateLimit(count=3, per_s=60), sent_since)
    assert limiter.take("a", 100_000) == 0  # 3 − 2 sent in the last minute = one left
    assert limiter.take("a", 100_000) > 0
    assert [limiter.take("b", 100_000) for _ in range(3)] == [0, 0, 0]
    assert windows == [("a", 40_000), ("b", 40_000)]  # asked once per recipient, last 60 s


def test_outbox_counts_sends_per_recipient_and_knows_the_next_retry(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    for key, recipient in (("k1", "r1"), ("k2", "r1"), ("k3", "r2")):
        box.enqueue(key, "A-1", recipient, Tier.COUNTY, 0, "webhook", NOTICE.to_dict(), 0, 0)
    first, second, third = box.due(0)
    box.delivered(first.id, 1_000, "HTTP 204", 1.0)
    box.failed(second.id, 2_000, "retry", "HTTP 503", 1.0, next_at_ms=9_000)
    box.defer(third.id, 2_000, 5_000, "rate limit")  # deferrals are not sends
    # failed attempts reached nobody: only the delivery counts against the recipient's limit
    assert box.sent_since("r1", 0) == 1 and box.sent_since("r1", 999) == 1
    assert box.sent_since("r1", 1_000) == 0  # the window is strictly after `since_ms`
    assert box.sent_since("r2", 0) == 0
    assert box.next_due_ms(after_ms=2_000) == 5_000
    assert box.next_due_ms(after_ms=5_000) == 9_000
    assert box.next_due_ms(after_ms=9_000) is None
