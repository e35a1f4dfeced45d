"""Read a compiled cubin without a GPU: resource usage, SASS loops and per-step counts.

Uses the ``nvdisasm`` and ``cuobjdump`` that ship inside the triton package
(``triton/backends/nvidia/bin``), so nothing beyond triton is needed.

How "per step of the steady-state loop" is counted (:func:`analyze_sass`):

1. Disassemble with ``nvdisasm -c`` and parse every instruction (address, guard predicate,
   opcode, operands) and every label.
2. A loop is a branch (``BRA``) whose target label is at or before the branch; its body is the
   address range ``[target, branch]``. The *innermost* loops are those that contain no other
   loop; the steady-state loop is the innermost loop with the most instructions (the scan's
   recurrence, not a short clean-up loop). All loops are reported.
3. The body's instructions are counted statically: a forward branch inside the body (a guarded
   slow path) counts both sides, so the count is an upper bound on what one iteration issues.
   ``NOP`` padding is not counted.
4. Unrolling: the loop counter is a register ``R`` updated in the body by ``R = R + inc`` and
   compared (``ISETP``) in the body; it may count steps, elements or bytes. Evidence, in order:
   (a) the same register moves by a smaller ``inc0`` elsewhere in the kernel (LLVM's remainder
   loop or peeled steps after unrolling by a run-time count): ``unroll = inc / inc0``;
   (b) a constant bound ``B`` (a constexpr trip count): when ``B`` is within two increments of
   ``expected_steps`` but not equal (a step counter whose loop had an iteration peeled off),
   ``unroll = inc``; else ``B / inc`` iterations cover the ``expected_steps`` of a program
   (given by the caller), ``unroll = expected_steps / (B / inc)``; a bound below one increment
   is a bounds check, not a trip count;
   A counter that ptxas renames every iteration (``R2 = R1 + inc``, compare on ``R1``) counts
   too, for rule (b). (c) ``inc == 1``: one step; (d) the caller's hint (a loop over tiles of ``SEGS * SEG`` chunks
   processes that many steps an iteration), used only when (a)-(c) find nothing. Otherwise
   ``unroll`` is 1 and ``unroll_found`` is False.
   A loop unrolled completely leaves no loop: then the per-step counts are the whole kernel's
   divided by ``expected_steps``.
5. Per step = body count / ``unroll``. SASS counts are per warp: every warp of a program issues
   the whole body.

The per-iteration latency (``latency_cycles``) replays the body in order for one warp: each
instruction issues one cycle after the previous one or when its source registers are ready,
whichever is later, and its destination is ready :data:`LATENCY` cycles later. The body is
replayed three times back to back and the third iteration's span is the latency, so a value
produced late in one iteration and read early in the next (ptxas sinks loads toward their
consumers and the loop's back edge) costs what it costs on the GPU; a single replay that took
such registers as ready under-counted pass 3's step by ~30 % (1,321 against 1,702 cycles for
two steps). It is what a single warp takes per iteration when no other warp hides its stalls (a
global load feeding the recurrence shows up here in full).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Optional

#: Cycles until an instruction's result can be used, by opcode prefix (first match wins).
#: Leads for Hopper from public microbenchmarks (Luo et al. 2024, "Benchmarking and Dissecting
#: the Nvidia Hopper GPU Architecture"); a global load is taken as an L2 miss to HBM.
LATENCY: tuple[tuple[str, int], ...] = (
    ("LDGDEPBAR", 0),
    ("LDGSTS", 0),  # asynchronous: the wait shows up at DEPBAR / the shared-memory load
    ("LDG", 480),
    ("LD.", 480),
    ("LDL", 30),
    ("LDS", 30),
    ("LDSM", 30),
    ("UTMALDG", 0),
    ("UBLKCP", 0),
    ("SHFL", 30),
    ("MUFU", 20),
    ("S2R", 20),
    ("S2UR", 20),
    ("LDC", 20),
    ("ULDC", 20),
    ("BAR", 20),
    ("DFMA", 8),
    ("DADD", 8),
    ("DMUL", 8),
    ("ATOM", 480),
    ("RED", 0),
)
DEFAULT_LATENCY = 4  # FP32/INT32 ALU (FFMA, IADD3, LOP3, ISETP, ...)

#: Opcode prefixes counted in each class.
MUFU_OPS = ("MUFU",)
SHUFFLE_OPS = ("SHFL",)
BARRIER_OPS = ("BAR", "WARPSYNC", "BSYNC")
GLOBAL_LOAD_OPS = ("LDG", "LD.")
GLOBAL_STORE_OPS = ("STG", "ST.", "RED", "ATOM")
ASYNC_COPY_OPS = ("LDGSTS", "UTMALDG", "UTMAPF", "UBLKCP", "UTMASTG", "UBLKPF")
SPILL_OPS = ("LDL", "STL")

_INSN = re.compile(r"/\*([0-9a-f]+)\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z0-9_.]+)\s*([^;]*);")
_LABEL = re.compile(r"^(\.L_x_\d+|\.L_\w+):")
_BRANCH_TARGET = re.compile(r"\(?(\.L_\w+)\)?")
_REG = re.compile(r"\b(U?R\d+|U?P\d)\b")
_IMM = re.compile(r"^-?0x[0-9a-f]+$|^-?\d+$")


@dataclass
class Insn:
    addr: int
    pred: str
    op: str
    args: list[str]

    def is_(self, prefixes: tuple[str, ...]) -> bool:
        return self.op.startswith(prefixes)


@dataclass
class Loop:
    start: int
    end: int
    instructions: int
    unroll: int
    unroll_found: bool
    innermost: bool
    latency_cycles: int = 0
    counts: dict = field(default_factory=dict)


@dataclass
class SassReport:
    """Static facts of one kernel's SASS; ``*_per_step`` refer to the steady-state loop."""

    registers: int
    stack_bytes: int
    shared_bytes: int
    local_bytes: int
    spills: int  # LDL + STL instructions anywhere in the kernel (0: no spills)
    instructions_total: int
    async_copies: int  # LDGSTS / TMA / bulk copies anywhere in the kernel
    loops: list[Loop]
    instructions_per_step: Optional[float] = None
    mufu_per_step: Optional[float] = None
    shuffles_per_step: Optional[float] = None
    barriers_per_step: Optional[float] = None
    global_loads_per_step: Optional[float] = None
    global_stores_per_step: Optional[float] = None
    async_copies_per_step: Optional[float] = None
    latency_cycles_per_step: Optional[float] = None
    unroll: int = 1
    unroll_found: bool = False
    instructions_outside_loop: int = 0
    #: Single-warp latency of the code outside the steady-state loop (before it and after it,
    #: each replayed once in order): a program's prologue and epilogue; 0 when no loop is left
    #: (its per-step figures are the whole program's, prologue included). None: not analysed.
    outside_loop_latency_cycles: Optional[int] = None

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=None)
def tool(name: str) -> str:
    """Path of ``nvdisasm`` / ``cuobjdump`` from the installed triton package."""
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{name} not found at {path} (triton's NVIDIA backend is missing)")
    return path


def _run_on_cubin(args: list[str], cubin: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as fh:
        fh.write(cubin)
        fh.flush()
        done = subprocess.run(args + [fh.name], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{os.path.basename(args[0])} failed: {done.stderr.strip()[:500]}")
    return done.stdout


def disassemble(cubin: bytes) -> str:
    # nvdisasm warns that it falls back to the "old" format for triton's cubins (and disables
    # its data-flow analysis); the listing itself is complete.
    return _run_on_cubin([tool("nvdisasm"), "-c"], cubin)


def resource_usage(cubin: bytes) -> dict:
    """``REG``, ``STACK``, ``SHARED``, ``LOCAL`` of the (single) function in ``cubin``."""
    text = _run_on_cubin([tool("cuobjdump"), "-res-usage"], cubin)
    out = {}
    for key in ("REG", "STACK", "SHARED", "LOCAL"):
        m = re.search(rf"\b{key}:(\d+)", text)
        out[key] = int(m.group(1)) if m else 0
    return out


def parse_sass(text: str) -> tuple[list[Insn], dict[str, int]]:
    """Instructions in address order and label -> address."""
    insns: list[Insn] = []
    labels: dict[str, int] = {}
    pending: list[str] = []
    for line in text.splitlines():
        lm = _LABEL.match(line.strip())
        if lm:
            pending.append(lm.group(1))
            continue
        m = _INSN.search(line)
        if not m:
            continue
        addr = int(m.group(1), 16)
        for name in pending:
            labels[name] = addr
        pending = []
        args = [a.strip() for a in m.group(4).split(",")] if m.group(4).strip() else []
        insns.append(Insn(addr, (m.group(2) or "").strip(), m.group(3), args))
    for name in pending:  # a label after the last instruction
        labels[name] = insns[-1].addr + 16 if insns else 0
    return insns, labels


def find_loops(insns: list[Insn], labels: dict[str, int]) -> list[tuple[int, int]]:
    """``(start, end)`` address ranges of every backward branch, outermost first."""
    loops = []
    for ins in insns:
        if not ins.op.startswith("BRA") or not ins.args:
            continue
        m = _BRANCH_TARGET.search(ins.args[-1].replace("`", ""))
        if not m or m.group(1) not in labels:
            continue
        target = labels[m.group(1)]
        if target < ins.addr:
            loops.append((target, ins.addr))
    # A self-branch ``BRA .`` (the trap after EXIT) is no loop: start == end is excluded above.
    return sorted(set(loops), key=lambda r: (r[0], -r[1]))


def _regs(operand: str) -> list[str]:
    # Drop modifiers like .reuse / .64 handled by the word boundary; constant-bank and address
    # brackets are kept: a register inside [R4+0x10] is a source.
    return [r for r in _REG.findall(operand) if r not in ("RZ", "URZ", "PT", "UPT")]


#: Opcodes that write no register (their first operand is a source).
_NO_DEST = ("STG", "ST.", "STS", "STL", "RED", "BAR", "BRA", "EXIT", "DEPBAR", "LDGSTS", "LDGDEPBAR",
            "WARPSYNC", "BSYNC", "BSSY", "NOP", "MEMBAR", "FENCE", "CCTL", "ERRBAR", "UTMALDG",
            "UTMASTG", "UTMAPF", "UBLKCP", "UBLKPF", "SYNCS", "RET", "CALL")


def _dests_and_sources(ins: Insn) -> tuple[list[str], list[str]]:
    """Destination and source registers (approximate: register pairs by their first register)."""
    if ins.is_(_NO_DEST) or not ins.args:
        dests, srcs = [], [r for a in ins.args for r in _regs(a)]
    elif ins.is_(("ISETP", "FSETP", "DSETP", "UISETP", "PLOP3", "HSETP")) and len(ins.args) > 1:
        dests = _regs(ins.args[0]) + _regs(ins.args[1])
        srcs = [r for a in ins.args[2:] for r in _regs(a)]
    else:
        dests = _regs(ins.args[0])
        srcs = [r for a in ins.args[1:] for r in _regs(a)]
    if ins.pred:
        srcs += _regs(ins.pred.replace("!", ""))
    return dests, srcs


def latency_of(op: str) -> int:
    for prefix, cycles in LATENCY:
        if op.startswith(prefix):
            return cycles
    return DEFAULT_LATENCY


#: Cycles until an asynchronous copy (``LDGSTS``) lands in shared memory: a global load's.
ASYNC_COPY_LATENCY = 480
_DEPBAR_LE = re.compile(r"SB\d+,\s*(0x[0-9a-f]+|\d+)")


def replay_latency(body: list[Insn], loop: bool = False) -> int:
    """In-order issue by one warp (see the module docstring): of ``body`` once, or with ``loop``
    of one steady-state iteration, the third of three back to back, so that a register written
    late in one iteration (a load the compiler sank toward the back edge) and read early in the
    next stalls the next one as it does on the GPU. Asynchronous copies are tracked by commit
    group: ``LDGDEPBAR`` closes a group that lands :data:`ASYNC_COPY_LATENCY` cycles after its
    last ``LDGSTS``, and ``DEPBAR.LE SBx, n`` waits until at most ``n`` groups are in flight."""
    ready: dict[str, int] = {}
    groups: list[int] = []  # landing time of each committed, not yet waited-for group
    pending = None  # landing time of the open group
    t = -1
    start = 0
    for _ in range(3 if loop else 1):
        start = t + 1
        for ins in body:
            dests, srcs = _dests_and_sources(ins)
            t = max([t + 1] + [ready.get(r, 0) for r in srcs])
            if ins.op.startswith("LDGSTS"):
                pending = max(pending or 0, t + ASYNC_COPY_LATENCY)
            elif ins.op.startswith("LDGDEPBAR"):
                if pending is not None:
                    groups.append(pending)
                pending = None
            elif ins.op.startswith("DEPBAR"):
                m = _DEPBAR_LE.search(" ".join(ins.args))
                keep = int(m.group(1), 0) if m else 0
                while len(groups) > keep:
                    t = max(t, groups.pop(0))
            done = t + latency_of(ins.op)
            for r in dests:
                ready[r] = done
    return t + 1 - start


def _add_immediates(body: list[Insn]) -> list[tuple[str, str, int]]:
    """``Rd = Rs + imm`` instructions of the body (carry predicates ignored) as
    ``(Rd, Rs, imm)``."""
    out = []
    for ins in body:
        if not ins.is_(("IADD3", "VIADD", "UIADD3", "IADD", "UIADD")) or ".X" in ins.op or not ins.args:
            continue
        dest = _regs(ins.args[0])
        operands = [a for a in ins.args[1:] if a not in ("PT", "!PT", "RZ", "URZ", "UPT", "!UPT")]
        regs = [r for a in operands for r in _regs(a) if not r.lstrip("U").startswith("P")]
        imms = [a for a in operands if _IMM.match(a)]
        if len(dest) == 1 and len(regs) == 1 and len(imms) == 1 and int(imms[0], 0) != 0:
            out.append((dest[0], regs[0], int(imms[0], 0)))
    return out


def _increments(body: list[Insn]) -> dict[str, int]:
    """Registers updated in the body by ``R = R + imm``: R -> the body's total increment (an
    unrolled body may step the same counter once per step)."""
    out: dict[str, int] = {}
    for dest, src, imm in _add_immediates(body):
        if dest == src:
            out[dest] = out.get(dest, 0) + imm
    return out


def _renamed_increments(body: list[Insn]) -> dict[str, int]:
    """``Rd = Rs + imm`` with ``Rd != Rs`` in the body: Rs -> imm. A loop counter that ptxas
    renames each iteration (the compare reads ``Rs``, the next value goes to ``Rd``)."""
    out: dict[str, int] = {}
    for dest, src, imm in _add_immediates(body):
        if dest != src and imm > 0:
            out.setdefault(src, imm)
    return out


def detect_unroll(body: list[Insn], expected_steps: Optional[int] = None,
                  kernel: Optional[list[Insn]] = None) -> tuple[int, bool]:
    """Steps one iteration processes (module docstring, step 4)."""
    incs = _increments(body)
    renamed = _renamed_increments(body)
    everywhere: dict[str, set[int]] = {}
    for ins in kernel or body:  # every `R = R + imm` in the kernel: peeled and remainder steps too
        for reg, inc in _increments([ins]).items():
            everywhere.setdefault(reg, set()).add(abs(inc))
    compares = []  # (counter increment, the compared operand, smallest increment seen)
    for ins in body:
        if not ins.is_(("ISETP", "UISETP")) or ".EX" in ins.op or len(ins.args) < 4:
            continue
        a, b = ins.args[2], ins.args[3]
        for reg_arg, other in ((a, b), (b, a)):
            regs = _regs(reg_arg)
            if len(regs) == 1 and regs[0] in incs:
                inc = abs(incs[regs[0]])
                compares.append((inc, other, min(everywhere.get(regs[0], {inc}))))
            elif len(regs) == 1 and regs[0] in renamed and _IMM.match(other):
                inc = renamed[regs[0]]
                compares.append((inc, other, inc))
    # Strongest evidence first, over every compare: an unrolled body also compares per-step
    # indices (bounds checks) that move by one.
    for inc, other, smallest in compares:
        if smallest < inc and inc % smallest == 0:
            # A remainder loop or peeled step moves the same counter by one step.
            return inc // smallest, True
    for inc, other, smallest in compares:
        if _IMM.match(other) and expected_steps:
            # Constant trip count: `bound / inc` iterations cover the program's steps.
            # (The bound may stop short of the end by less than one iteration: round up.)
            bound = abs(int(other, 0))
            if bound < inc:
                # Not the trip count: a per-row bounds check against a register that moves by
                # a whole tile (the carry's `row < n_carry - first_chunk`).
                continue
            if abs(bound - expected_steps) <= 2 * inc and bound != expected_steps:
                # The counter counts steps and LLVM peeled an iteration off the unrolled
                # loop (the bound stops short by up to two iterations). Checked first: at a
                # 6-step chunk, bound 4 by 2 would also read as 2 iterations of 3 steps.
                return inc, True
            iters = -(-bound // inc)
            if iters and expected_steps % iters == 0:
                return expected_steps // iters, True
    if any(inc == 1 for inc, _, _ in compares):
        return 1, True
    return 1, False


def _count(body: list[Insn], prefixes: tuple[str, ...]) -> int:
    # LDGSTS / LDGDEPBAR begin with "LDG" but are asynchronous copies, not loads to registers.
    skip = ASYNC_COPY_OPS + ("LDGDEPBAR",) if prefixes == GLOBAL_LOAD_OPS else ()
    return sum(1 for ins in body if ins.is_(prefixes) and not (skip and ins.is_(skip)))


def analyze_sass(text: str, resources: Optional[dict] = None,
                 expected_steps: Optional[int] = None, unroll_hint: Optional[int] = None) -> SassReport:
    insns, labels = parse_sass(text)
    insns_no_nop = [i for i in insns if i.op != "NOP"]
    ranges = find_loops(insns, labels)
    loops: list[Loop] = []
    for start, end in ranges:
        body = [i for i in insns_no_nop if start <= i.addr <= end]
        inner = not any(s >= start and e <= end and (s, e) != (start, end) for s, e in ranges)
        unroll, found = detect_unroll(body, expected_steps, insns_no_nop)
        if not found and unroll_hint:
            unroll = unroll_hint
        counts = {
            "mufu": _count(body, MUFU_OPS),
            "shuffles": _count(body, SHUFFLE_OPS),
            "barriers": _count(body, BARRIER_OPS),
            "global_loads": _count(body, GLOBAL_LOAD_OPS),
            "global_stores": _count(body, GLOBAL_STORE_OPS),
            "async_copies": _count(body, ASYNC_COPY_OPS),
        }
        loops.append(Loop(start, end, len(body), unroll, found, inner, replay_latency(body, loop=True),
                          counts))
    res = resources or {}
    report = SassReport(
        registers=res.get("REG", 0),
        stack_bytes=res.get("STACK", 0),
        shared_bytes=res.get("SHARED", 0),
        local_bytes=res.get("LOCAL", 0),
        spills=_count(insns_no_nop, SPILL_OPS),
        instructions_total=len(insns_no_nop),
        async_copies=_count(insns_no_nop, ASYNC_COPY_OPS),
        loops=loops,
        instructions_outside_loop=len(insns_no_nop),
    )
    inner = [lp for lp in loops if lp.innermost]
    if inner:
        main = max(inner, key=lambda lp: lp.instructions)
        u = main.unroll
        report.instructions_per_step = main.instructions / u
        report.mufu_per_step = main.counts["mufu"] / u
        report.shuffles_per_step = main.counts["shuffles"] / u
        report.barriers_per_step = main.counts["barriers"] / u
        report.global_loads_per_step = main.counts["global_loads"] / u
        report.global_stores_per_step = main.counts["global_stores"] / u
        report.async_copies_per_step = main.counts["async_copies"] / u
        report.latency_cycles_per_step = main.latency_cycles / u
        report.unroll, report.unroll_found = u, main.unroll_found
        report.instructions_outside_loop = len(insns_no_nop) - main.instructions
        report.outside_loop_latency_cycles = (
            replay_latency([i for i in insns_no_nop if i.addr < main.start])
            + replay_latency([i for i in insns_no_nop if i.addr > main.end]))
    elif expected_steps:
        k = float(expected_steps)
        report.instructions_per_step = len(insns_no_nop) / k
        report.mufu_per_step = _count(insns_no_nop, MUFU_OPS) / k
        report.shuffles_per_step = _count(insns_no_nop, SHUFFLE_OPS) / k
        report.barriers_per_step = _count(insns_no_nop, BARRIER_OPS) / k
        report.global_loads_per_step = _count(insns_no_nop, GLOBAL_LOAD_OPS) / k
        report.global_stores_per_step = _count(insns_no_nop, GLOBAL_STORE_OPS) / k
        report.async_copies_per_step = _count(insns_no_nop, ASYNC_COPY_OPS) / k
        report.latency_cycles_per_step = replay_latency(insns_no_nop) / k
        report.unroll, report.unroll_found = expected_steps, True
        report.instructions_outside_loop = 0
        report.outside_loop_latency_cycles = 0
    return report


def analyze_cubin(cubin: bytes, expected_steps: Optional[int] = None,
                  unroll_hint: Optional[int] = None) -> tuple[SassReport, str]:
    """Report and SASS text of a cubin; ``expected_steps`` (steps per program) resolves the
    unrolling of loops with a constant trip count, ``unroll_hint`` is step (d)."""
    text = disassemble(cubin)
    return analyze_sass(text, resource_usage(cubin), expected_steps, unroll_hint), text


__all__ = ["SassReport", "Loop", "analyze_cubin", "analyze_sass", "disassemble", "resource_usage",
           "parse_sass", "find_loops", "detect_unroll", "replay_latency", "tool", "LATENCY"]
