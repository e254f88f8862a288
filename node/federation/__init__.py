# SPDX-License-Identifier: Apache-2.0
"""The federation directory: who is a member, with which keys, signed by the secretariat."""
