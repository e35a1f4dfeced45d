"""Import CompressAI on machines without a usable torchvision.

``import compressai`` runs ``import torchvision.transforms`` only to fill a registry of
transforms. Where torchvision is missing (no CPU build exists for our torch) or broken (a CUDA
build on a CPU machine), we register an empty placeholder package for ``torchvision`` and
``torchvision.transforms`` first. The placeholders carry a ``__spec__`` so that other packages'
``importlib.util.find_spec("torchvision")`` does not raise.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types


def _install_torchvision_placeholder() -> None:
    tv = types.ModuleType("torchvision")
    tv.__spec__ = importlib.machinery.ModuleSpec("torchvision", None, is_package=True)
    tv.__path__ = []
    transforms = types.ModuleType("torchvision.transforms")
    transforms.__spec__ = importlib.machinery.ModuleSpec("torchvision.transforms", None)
    tv.transforms = transforms
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.transforms"] = transforms


def import_compressai():
    """Return the ``compressai`` module, importing it with the placeholder when needed."""
    if "compressai" in sys.modules:
        return sys.modules["compressai"]
    try:
        import torchvision.transforms  # noqa: F401
    except Exception:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _install_torchvision_placeholder()
    import compressai

    return compressai
