"""What the Docker image must hold for the bundle's programs, checked before anything is imported.

Standard library only: this runs first in a Codabench container, where a missing
package must end the program with one line naming it, not with an ImportError deep in
the kit.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable

# Third-party packages the programs import (the kit's own two packages travel in the bundle).
REQUIRED_MODULES = (
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "scipy",
    "matplotlib",
    "jinja2",
    "tqdm",
    "yaml",
    "safetensors",
)


def missing_modules(names: Iterable[str] = REQUIRED_MODULES) -> list[str]:
    """The modules of ``names`` that this Python cannot import."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def require_image(names: Iterable[str] = REQUIRED_MODULES) -> None:
    """Exit with one line naming what the image lacks, or return."""
    missing = missing_modules(names)
    if missing:
        print(
            f"error: the Docker image lacks {', '.join(missing)}: build it from the kit's "
            "scoring/hosting/Dockerfile (python {}.{})".format(*sys.version_info[:2]),
            file=sys.stderr,
        )
        sys.exit(3)
