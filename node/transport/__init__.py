# SPDX-License-Identifier: Apache-2.0
"""gRPC transport: servers, servicers, the peer client and the status mapping."""
