"""Record the Triton kernels an op launches, without a GPU, and compile them for sm_90.

:func:`capture` runs any launcher (the ops' own code, unchanged) with ``JITFunction.run``
replaced by a recorder: each launch is bound and specialised exactly as Triton's runtime would
(argument types, 16-byte divisibility, ``== 1`` specialisation, constexprs, ``num_warps``,
``num_stages``) and recorded with its grid, then skipped. The launchers run on ``meta`` tensors
(shapes and dtypes, no memory), so the real benchmark shapes cost nothing; a ``meta`` tensor's
address is 0, i.e. aligned, like a fresh CUDA allocation. While recording, the kernels' device
queries answer as an H100 would (:data:`VIRTUAL_DEVICE`), so grids are sized as there.

:func:`compile_launch` compiles a recorded launch with ``triton.compile`` for
``GPUTarget("cuda", 90, 32)`` (ptxas runs on the CPU) and returns the cubin.

Needs ``TRITON_INTERPRET`` unset in this process before triton is imported (the interpreter
replaces ``@triton.jit`` functions): :func:`require_compiler` checks it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from samic_fast.kernels._utils import PDL_ENV

#: SM count the launchers see while recording (H100 SXM / H200: 132).
VIRTUAL_SMS = 132
#: Compilation target: Hopper, 32 threads per warp.
ARCH = 90
#: The launchers' device queries (kernels/_utils.py) and what they answer while recording: an
#: H100's SM count, and programmatic dependent launch (sm_90) as the launchers use it there.
VIRTUAL_DEVICE = {
    "num_sms": lambda device=None: VIRTUAL_SMS,
    "use_pdl": lambda device=None: os.environ.get(PDL_ENV, "1") != "0",
}


@dataclass
class Launch:
    """One recorded kernel launch."""

    kernel: Any  # triton.runtime.jit.JITFunction
    name: str
    grid: tuple[int, int, int]
    signature: dict
    constexprs: dict
    attrs: dict
    options: Any  # the backend's options object (num_warps, num_stages, ...)
    args: dict  # argument name -> value (tensors as meta tensors)
    tensor_bytes: int = 0  # sum of the tensor arguments' sizes
    key: str = field(default="")

    @property
    def num_warps(self) -> int:
        return int(self.options.num_warps)

    @property
    def num_stages(self) -> int:
        return int(getattr(self.options, "num_stages", 0))

    @property
    def programs(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]

    def scalar_args(self) -> dict:
        """Non-tensor arguments that are plain numbers or flags (runtime and constexpr)."""
        import torch

        out = {}
        for k, v in self.args.items():
            if isinstance(v, torch.Tensor) or v is None:
                continue
            v = getattr(v, "value", v)  # tl.constexpr
            if isinstance(v, (bool, int, float, str)):
                out[k] = v
        return out


def require_compiler() -> None:
    """Raise when Triton's interpreter is on in this process (then nothing can be compiled)."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError("TRITON_INTERPRET is set: the static report needs Triton's compiler; "
                           "run it in a process without TRITON_INTERPRET")


def _target():
    from triton.backends.compiler import GPUTarget

    return GPUTarget("cuda", ARCH, 32)


def _backend():
    from triton.compiler import make_backend

    return make_backend(_target())


def _grid_of(grid, bound_args) -> tuple[int, int, int]:
    if callable(grid):
        grid = grid(bound_args)
    grid = tuple(int(g) for g in grid) + (1, 1, 1)
    return grid[0], grid[1], grid[2]


def _record(launches: list[Launch]) -> Callable:
    from triton.runtime.jit import create_function_from_signature

    backend = _backend()

    def run(self, *args, grid, warmup, **kwargs):
        import torch

        binder = create_function_from_signature(self.signature, self.params, backend)
        bound_args, specialization, options = binder(*args, **kwargs)
        options, signature, constexprs, attrs = self._pack_args(backend, kwargs, bound_args,
                                                                specialization, options)
        tensors = [v for v in bound_args.values() if isinstance(v, torch.Tensor)]
        nbytes = sum(t.numel() * t.element_size() for t in tensors)
        key = repr((self.fn.__qualname__, sorted(signature.items()), sorted(constexprs.items()),
                    sorted((k, repr(v)) for k, v in attrs.items()), sorted(options.__dict__.items())))
        launches.append(Launch(self, self.fn.__name__, _grid_of(grid, bound_args), signature,
                               constexprs, attrs, options, dict(bound_args), nbytes, key))
        return None

    return run


def _autotuner_run(self, *args, **kwargs):
    # No timing without a GPU: record the first configuration the autotuner would try.
    cfg = self.configs[0]
    merged = {**kwargs, **cfg.all_kwargs()}
    return self.fn.run(*args, **merged)


@contextlib.contextmanager
def capture(kernel_packages: tuple[str, ...] = ("samic_fast",)) -> Iterator[list[Launch]]:
    """Record (and skip) every Triton launch inside the ``with`` block."""
    require_compiler()
    from triton.runtime import autotuner
    from triton.runtime.jit import JITFunction

    launches: list[Launch] = []
    saved: list[tuple[Any, str, Any]] = [(JITFunction, "run", JITFunction.__dict__["run"]),
                                         (autotuner.Autotuner, "run", autotuner.Autotuner.__dict__["run"])]
    JITFunction.run = _record(launches)
    autotuner.Autotuner.run = _autotuner_run
    # Every loaded module of the given packages that holds one of the launchers' device queries
    # (kernels/_utils.py) sees the virtual device's answer.
    for name, mod in list(sys.modules.items()):
        if mod is None or not name.startswith(kernel_packages):
            continue
        for attr in VIRTUAL_DEVICE:
            fn = getattr(mod, "__dict__", {}).get(attr)
            if callable(fn):
                saved.append((mod, attr, fn))
    for mod_or_cls, attr, _ in saved[2:]:
        setattr(mod_or_cls, attr, VIRTUAL_DEVICE[attr])
    try:
        yield launches
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)


def compile_launch(launch: Launch):
    """Compile a recorded launch for sm_90 exactly as the runtime would; returns the compiled
    kernel (``.asm["cubin"]``, ``.metadata``)."""
    import triton
    from triton.compiler import ASTSource

    src = ASTSource(launch.kernel, launch.signature, launch.constexprs, launch.attrs)
    return triton.compile(src, target=_target(), options=launch.options.__dict__)


def custom_op_impl(qualname: str) -> Callable:
    """The Python implementation behind a ``torch.library.custom_op`` (``"ns::name"``): the
    op's real launcher, which the dispatcher would replace by the fake kernel for meta tensors."""
    from torch._library.custom_ops import OPDEFS

    if qualname not in OPDEFS:
        raise KeyError(f"custom op {qualname} is not registered (import the package defining it)")
    return OPDEFS[qualname]._init_fn


def triton_version() -> str:
    import triton

    return triton.__version__


__all__ = ["Launch", "capture", "compile_launch", "custom_op_impl", "require_compiler",
           "VIRTUAL_SMS", "ARCH", "triton_version"]
