"""Will it fit? The memory a device can give a new job, and the one refusal
for work that cannot fit, stated with its estimate before anything is allocated.

Estimates are floors (what the job holds for sure), so a refusal is never a
false alarm; a user who knows better (memory freed by then, swap, a bigger
node later) overrides it with --force.
"""

from __future__ import annotations

import os

from sparsescale.errors import SparsescaleError


def fmt_bytes(n: float) -> str:
    for div, unit in (
        (1 << 50, "PB"),
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ):
        if n >= div:
            return f"{n / div:.3g} {unit}"
    return f"{n:.0f} B"


def available_memory(device: str = "cpu") -> tuple[int, str]:
    """(bytes a new allocation can get, what they are) on `device`: a CUDA
    device's free memory, else this machine's MemAvailable (Linux; the
    physical memory elsewhere), lowered by an address-space limit if set."""
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            free, _ = torch.cuda.mem_get_info(torch.device(device))
            return int(free), f"free on {torch.cuda.get_device_name(torch.device(device))}"
    avail, what = None, "available on this machine"
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    if avail is None:
        avail = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        what = "of memory on this machine"
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft < avail:
            avail, what = soft, "allowed by this process's address-space limit"
    except (ImportError, ValueError, OSError):
        pass
    return int(avail), what


def check_fits(
    need_bytes: float,
    what: str,
    device: str = "cpu",
    detail: str = "",
    force_flag: str | None = "--force",
) -> None:
    """Refuse `what` (a flag and its value, for the message) when its memory
    floor `need_bytes` exceeds what `device` has free; `detail` says what the
    floor counts, `force_flag` how to go ahead anyway (None: no way)."""
    avail, where = available_memory(device)
    if need_bytes <= avail:
        return
    hint = f"; {force_flag} runs it anyway" if force_flag else ""
    raise SparsescaleError(
        f"{what}: needs at least {fmt_bytes(need_bytes)} of memory"
        + (f" ({detail})" if detail else "")
        + f", more than the {fmt_bytes(avail)} {where}{hint}"
    )
