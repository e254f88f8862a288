# SPDX-License-Identifier: Apache-2.0
"""Keys, the signed-bytes encoding, envelope sealing and receipts. Pure: no network."""
