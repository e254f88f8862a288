# SPDX-License-Identifier: Apache-2.0
"""How a node's background workers retry and claim their work, from its configuration."""

from __future__ import annotations

import os
import socket
import uuid

from node.config import NodeConfig
from node.services.delivery import DeliverySettings
from node.services.outbox import RetryPolicy
from node.services.set_offers import OfferSettings


def offer_settings(config: NodeConfig) -> OfferSettings:
    """Indicator set offers and sighting reports retry like deliveries, under claims of their
    own."""
    delivery = delivery_settings(config)
    return OfferSettings(owner=delivery.owner, retry=delivery.retry, lease_ms=delivery.lease_ms)


def delivery_settings(config: NodeConfig) -> DeliverySettings:
    return DeliverySettings(
        # Unique per process: replicas sharing a database tell their claims apart.
        owner=f"{config.agency_id}/{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}",
        retry=RetryPolicy(base_s=config.retry_base_s, cap_s=config.retry_cap_s),
        # A claim outlives any single attempt (the call deadline) with room to record it.
        lease_ms=int(config.delivery_timeout_s * 2000) + 5000,
        max_in_flight=config.max_in_flight,
        poll_interval_s=config.poll_interval_s,
    )
