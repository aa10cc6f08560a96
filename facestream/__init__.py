"""facestream: streaming video face recognition.

The product card keeps the folders ``pipeline/`` and ``engines/`` at the repository root; they are installed as
``facestream.pipeline`` and ``facestream.engines`` (setuptools ``package-dir`` in pyproject.toml), so nothing but
``facestream`` is installed top-level. In a source checkout (tests, ``python bench/...``, a worktree run against
another checkout's virtualenv) the same names resolve to the folders beside this package: the checkout root is
appended to this package's search path. An installed wheel has the subpackages inside it, which are found first.
"""

from pathlib import Path

__version__ = "0.1.0"

_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "pipeline" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 - the package's own search path
