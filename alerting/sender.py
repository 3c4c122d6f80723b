"""Send one outbox notification over its recipient's channel and judge the result.

Secrets come from a mapping (the process environment in production); a missing secret is a
permanent failure with a reason, never a silent skip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from alerting.channels.base import HttpRequest, HttpResponse, Verdict, classify_status
from alerting.channels.command_platform import platform_request
from alerting.channels.sms import sms_adapter
from alerting.channels.webhook import webhook_request
from alerting.messages import Notice
from alerting.outbox import Pending
from alerting.policy import CommandPlatformChannel, RoutingPolicy, SmsChannel, WebhookChannel
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
        adapter = sms_adapter(self.policy.sms_providers[channel.provider], self._secret)
        return adapter.request(channel.phone, notice, item.key, self.now_s()), adapter.verdict

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
