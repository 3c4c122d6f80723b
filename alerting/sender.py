"""Send one outbox notification over its recipient's channel and judge the result.

Secrets come from a mapping (the process environment in production); a missing secret is a
permanent failure with a reason, never a silent skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

from alerting.channels.base import HttpRequest, HttpResponse, Verdict, classify_status
from alerting.channels.command_platform import platform_request
from alerting.channels.sms import (
    aliyun_request,
    aliyun_verdict,
    gateway_request,
    tencent_request,
    tencent_verdict,
)
from alerting.channels.webhook import webhook_request
from alerting.messages import Notice
from alerting.outbox import Pending
from alerting.policy import (
    AliyunProvider,
    CommandPlatformChannel,
    RoutingPolicy,
    SmsChannel,
    TencentProvider,
    WebhookChannel,
)
from alerting.transport import Transport, TransportError


class MissingSecretError(LookupError):
    """An environment variable a channel needs is not set."""


class Sender:
    """Builds the request for a notification's channel, sends it, returns the verdict."""

    def __init__(
        self,
        policy: RoutingPolicy,
        transport: Transport,
        secrets: Mapping[str, str],
        now_s: Callable[[], int],
    ) -> None:
        self.policy = policy
        self.transport = transport
        self.secrets = secrets
        self.now_s = now_s

    def _secret(self, name: str) -> str:
        value = self.secrets.get(name)
        if not value:
            raise MissingSecretError(name)
        return value

    def build(self, item: Pending) -> tuple[HttpRequest, Callable[[HttpResponse], Verdict]]:
        """The request and its verdict function; KeyError/MissingSecretError when misconfigured."""
        channel = self.policy.recipient(item.recipient).channels[item.channel]
        notice = Notice.from_dict(item.notice)
        if isinstance(channel, WebhookChannel):
            payload = {"key": item.key, "recipient": item.recipient, **item.notice}
            secret = self._secret(channel.secret_env)
            return webhook_request(channel.url, secret, payload, item.key, self.now_s()), (
                classify_status
            )
        if isinstance(channel, CommandPlatformChannel):
            token = self._secret(channel.token_env)
            return platform_request(channel.url, token, notice, item.key), classify_status
        assert isinstance(channel, SmsChannel)
        provider = self.policy.sms_providers[channel.provider]
        if isinstance(provider, AliyunProvider):
            secret = self._secret(provider.access_key_secret_env)
            request = aliyun_request(provider, secret, channel.phone, notice, item.key,
                                     self.now_s(), uuid.uuid4().hex)  # fmt: skip
            return request, aliyun_verdict
        if isinstance(provider, TencentProvider):
            secret = self._secret(provider.secret_key_env)
            request = tencent_request(provider, secret, channel.phone, notice, item.key,
                                      self.now_s())  # fmt: skip
            return request, tencent_verdict
        token = self._secret(provider.token_env)
        return gateway_request(provider, token, channel.phone, notice, item.key), classify_status

    async def send(self, item: Pending) -> Verdict:
        """One attempt: delivered, retry or permanent, with a reason."""
        try:
            request, judge = self.build(item)
        except MissingSecretError as exc:
            return Verdict("permanent", f"missing secret {exc}")
        except (KeyError, IndexError) as exc:
            return Verdict("permanent", f"recipient or channel no longer configured: {exc}")
        try:
            response = await self.transport.send(request)
        except TransportError as exc:
            return Verdict("retry", str(exc))
        return judge(response)
