# SPDX-License-Identifier: Apache-2.0
"""gRPC channel and server options shared by both ends of the federation link."""

from __future__ import annotations

MAX_MESSAGE_BYTES = 2 * 1024 * 1024
"""Envelopes carry at most 1 MiB of payload; leave room for the header and signatures."""

COMMON_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Keep idle federation links alive through NAT and firewalls without flooding peers.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.max_pings_without_data", 0),
    # The outbox paces retries itself; gRPC's own reconnect backoff (up to two minutes)
    # would otherwise keep failing calls fast long after a peer is back.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    *COMMON_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
)

OVERLAP_CHUNK = 10_000
"""Points per message of an overlap check: 320 KB, well under MAX_MESSAGE_BYTES."""

SET_CHUNK_BYTES = 1024 * 1024
"""Piece of an indicator set's document per message of OfferSetInChunks: a set may be 32 MiB,
far past MAX_MESSAGE_BYTES, which stays small for every other call."""

LOCAL_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The Local service answers the agency's own users, over a Unix socket only the node's user
can open, with whole indicator sets (up to 100,000 indicators, tens of MiB) in one message."""

LOCAL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", LOCAL_MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", LOCAL_MAX_MESSAGE_BYTES),
)
