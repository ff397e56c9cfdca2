"""Packaging rule: the grammar and the spec library ship inside the package.

`grammar/archdsl.lark` and the `.arch` files of `specs/` (and of its subfolders) stay where they are
in the repository, the one copy of each; this maps those folders to the package data folders
`archdsl/grammar/` and `archdsl/specs/` of the wheel and the sdist, so every spec file added to
specs/ ships without a change here. The rest
of the metadata is in pyproject.toml; tests/test_packaging.py builds both and compares them with
the repository's files.
"""

from setuptools import find_packages, setup

DATA = {"archdsl.grammar": "grammar", "archdsl.specs": "specs"}

setup(
    packages=find_packages(include=["archdsl", "archdsl.*"]) + list(DATA),
    package_dir=DATA,
    package_data={"archdsl.grammar": ["*.lark"], "archdsl.specs": ["**/*.arch", "README.md"]},
)
