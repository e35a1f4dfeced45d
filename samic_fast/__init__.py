"""samic_fast: Triton kernels and a fast SAMIC (semantic-aware Mamba) image codec.

Public entry points: :mod:`samic_fast.ops` (the SASS ops with a ``backend`` switch),
:mod:`samic_fast.ref` (their pure-PyTorch references), :class:`samic_fast.samb.SAMB`,
:mod:`samic_fast.model` (the codec network) and :mod:`samic_fast.codec` (the file format).
Importing the package imports neither triton nor CompressAI.
"""

__version__ = "0.1.0"

from samic_fast import ops  # noqa: E402,F401
from samic_fast.errors import SamicError  # noqa: E402,F401
