# SPDX-License-Identifier: Apache-2.0
"""Services: what a node does, independent of how it is called."""
