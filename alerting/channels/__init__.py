"""Channel request formats, pure: each builds `HttpRequest`s and classifies `HttpResponse`s.

The one module doing network I/O is `alerting.transport`; `alerting.sender` picks the channel.
"""
