# SPDX-License-Identifier: Apache-2.0
"""Pure domain types: no I/O, no protobuf, no database."""
