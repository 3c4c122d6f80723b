"""Alerting: route warnings to the four tiers, follow them to clearance, deliver them durably.

Pure cores (no network library): `events` (engine events in), `policy` (the `routing:` section),
`routing` (event → recipients, channels, deadlines), `lifecycle` (raise, update, acknowledge,
feedback, clearance 消警, reminders and escalation), `flood`, `messages` (Chinese texts, SMS
segments), `retry` (backoff, rate limits) and `commands` (acknowledgements back to the engine).

Edges: `outbox` (SQLite WAL), `transport` (the one HTTP client adapter, aiohttp), `channels`
(webhook, SMS providers, command platform request formats), `dispatcher` (delivery loop),
`service` (glue), `api` (the aiohttp HTTP API). See docs/alerting.md.
"""
