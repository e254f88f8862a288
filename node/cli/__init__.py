# SPDX-License-Identifier: Apache-2.0
"""The ``comity`` command line: one small function per subcommand."""
