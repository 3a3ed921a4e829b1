"""kubelet's atomic writer, as it fills a ConfigMap or Secret volume, step
for step (pkg/volume/util/atomic_writer.go), so that tests feed vpnd
exactly what a pod sees.

The volume: `..<timestamp>/` holds the files; `..data` links to it; each
visible file is a link `name -> ..data/name`. An update writes a new
timestamped directory, links `..data_tmp` to it, renames that over
`..data` (the one atomic step), adds links for new files, removes links of
files gone, then removes the old directory.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


class AtomicWriter:
    def __init__(self, volume: Path, mode: int = 0o400):
        self.volume = Path(volume)
        self.mode = mode  # the volume's defaultMode
        self.volume.mkdir(parents=True, exist_ok=True)
        self.volume.chmod(0o1777)  # as the tmpfs kubelet mounts looks

    def write(self, payload: dict[str, bytes | str]) -> float:
        """Make the volume hold exactly `payload`; returns the monotonic time
        of the swap (the rename over `..data`)."""
        data = self.volume / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{time.time_ns() % 10**9:09d}"
        new = self.volume / stamp
        new.mkdir(mode=0o755)
        for name, content in payload.items():
            path = new / name
            path.write_bytes(content.encode() if isinstance(content, str) else content)
            path.chmod(self.mode)
        tmp = self.volume / "..data_tmp"
        tmp.symlink_to(stamp)
        os.rename(tmp, data)
        swapped = time.monotonic()
        for name in payload:
            link = self.volume / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        for link in self.volume.iterdir():
            if not link.name.startswith("..") and link.is_symlink() \
                    and link.name not in payload:
                link.unlink()
        if old:
            shutil.rmtree(self.volume / old)
        return swapped
