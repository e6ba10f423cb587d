"""Prometheus metrics, in a registry per app so tests and several apps do not collide."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.callbacks = Counter("microwish_callbacks_total", "WeChat callbacks by message type and outcome",
                                 ["type", "outcome"], registry=self.registry)
        self.latency = Histogram("microwish_callback_seconds", "Callback handling time",
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 5, 10), registry=self.registry)
        self.refusals = Counter("microwish_refusals_total", "Refused callbacks by reason", ["reason"], registry=self.registry)
        self.outbox_sent = Counter("microwish_outbox_sent_total", "Outbox messages delivered by channel", ["channel"], registry=self.registry)
        self.outbox_failed = Counter("microwish_outbox_failures_total", "Outbox send failures by channel and error",
                                     ["channel", "error"], registry=self.registry)
        self.outbox_dead = Counter("microwish_outbox_dead_total", "Outbox messages parked as dead", ["channel"], registry=self.registry)
        self.outbox_pending = Gauge("microwish_outbox_pending", "Outbox messages waiting", registry=self.registry)
        self.sweeps = Counter("microwish_sweep_items_total", "Items produced by scheduled sweeps", ["sweep"], registry=self.registry)
        self.late_replies = Counter("microwish_late_replies_total", "Replies that missed the deadline and went via the outbox",
                                    registry=self.registry)

    def watch_database(self, db: Any) -> None:
        """Group commit at work: batches, the jobs in them, and those answered set-wise (storage.db)."""
        self.registry.register(_DatabaseCollector(db))


class _DatabaseCollector:
    def __init__(self, db: Any) -> None:
        self.db = db

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily("microwish_db_batches", "Write transactions committed by the group-commit writers", value=self.db.batches)
        yield CounterMetricFamily("microwish_db_jobs", "Write jobs run (jobs / batches = how many share a commit)", value=self.db.jobs)
        yield CounterMetricFamily("microwish_db_grouped_jobs", "Write jobs answered set-wise by a group function", value=self.db.grouped)
