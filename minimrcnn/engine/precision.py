"""Mixed precision: which autocast dtype a training step runs in, on this device."""

from __future__ import annotations

from pathlib import Path

import torch


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware (x86 avx512_bf16 / AMX, Arm bf16): there bf16 autocast
    halves the convolutions' cost. Elsewhere bf16 is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16", "bf16"))


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype for training, or None for float32."""
    if not enabled:
        return None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if device.type != "cuda":
        return None
    # not torch.cuda.is_bf16_supported(): it also counts emulated bf16 (V100, T4), slower than fp16 there
    return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16
