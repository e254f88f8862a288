# SPDX-License-Identifier: Apache-2.0
"""Build step pyproject.toml cannot express: the wheel carries ``schemas/`` as ``node/schemas``.

``schemas/`` stays at the top of the source tree, where other agencies' implementations read
it; an installed node finds the copy inside its package (``node/resources.py``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithSchemas(build_py):
    """``build_py`` that also copies ``schemas/`` into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads schemas/ in the source tree
        source = Path(__file__).resolve().parent / "schemas"
        shutil.copytree(source, Path(self.build_lib) / "node" / "schemas", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithSchemas})
