"""What the benchmarks print about the machine they ran on: the CPU and its SIMD flags, the load, and
the measured fp32 matrix-multiply rate (the ceiling a transformer step's matmuls can reach).

Imported by the scripts in this folder (``python benchmarks/X.py`` puts it on the path).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

#: SIMD features that decide the speed of fp32/bf16 matrix multiplies on x86.
SIMD_FLAGS: tuple[str, ...] = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_description() -> str:
    """``"<model name>; N logical CPUs; SIMD: avx2, fma, …"`` from ``/proc/cpuinfo`` (``?`` where unreadable)."""
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    simd = [f for f in SIMD_FLAGS if f in flags]
    return f"{model}; {os.cpu_count()} logical CPUs; SIMD: {', '.join(simd) or '?'}"


def load_line() -> str:
    """``"load average 0.3 0.5 0.6"``: whether anything else ran beside the benchmark."""
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average ?"


def matmul_ceiling(m: int = 4096, k: int = 384, n: int = 1536, repeats: int = 20, device: str = "cpu") -> float:
    """Best-of-``repeats`` fp32 GFLOP/s of one ``(m, k) @ (k, n)`` matrix multiply (2·m·k·n FLOPs) with
    torch's threads — by default the shape of a MiniLM feed-forward layer on a 128 × 32-token batch."""
    import torch

    a = torch.randn(m, k, device=device)
    b = torch.randn(k, n, device=device)
    out = torch.empty(m, n, device=device)
    best = float("inf")
    for _ in range(repeats + 3):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2.0 * m * k * n / best / 1e9
