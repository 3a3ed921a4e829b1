"""What this machine's kernel can do, asked directly by the tests: the
truth vpnd's own answer is checked against."""
from __future__ import annotations

import subprocess

from vpnd.drivers import kernel_esp


def kernel_has_esp() -> bool:
    """Whether the kernel takes the ESP state scripts/install and doctor
    try first (tunnel mode, UDP encapsulation), in a namespace of its own."""
    state = kernel_esp.state_add(kernel_esp.xfrm_algorithms(*kernel_esp.BASELINE), 4, 0x200)
    return subprocess.run(["unshare", "--net", "--", *state], capture_output=True,
                          timeout=10).returncode == 0
