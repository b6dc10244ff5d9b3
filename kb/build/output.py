"""The build's output folder: a file is written only when its bytes change, and what an earlier
build wrote but this one no longer makes (a removed answer's pages) is removed.

Unchanged files keep their modification times, so a host or a sync (``rsync``, ``aws s3 sync``)
uploads only what changed. What the build wrote is listed in ``.kb-build.json`` in the folder;
files the build did not write are never touched.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

MANIFEST = ".kb-build.json"


class Output:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.written: list[str] = []
        self.unchanged = 0
        self.removed: list[str] = []
        self._made: set[str] = set()
        self._lock = threading.Lock()  # answers are built in threads

    def write(self, path: str, data: bytes) -> bool:
        """Put ``data`` at ``path`` (relative, "/"-separated) unless it is there already;
        whether it was written."""
        target = self.root / path
        with self._lock:
            self._made.add(path)
        try:
            if target.read_bytes() == data:
                with self._lock:
                    self.unchanged += 1
                return False
        except OSError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        # Atomic, as the cache writes: a host serving the folder never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.chmod(tmp, 0o644)  # readable by the web server, as a copied file would be
            os.replace(tmp, target)
        except OSError as exc:  # named by the file it was for, not the temporary one
            Path(tmp).unlink(missing_ok=True)
            raise OSError(exc.errno, exc.strerror, str(target)) from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self.written.append(path)
        return True

    def finish(self) -> None:
        """Remove what the previous build wrote and this one did not; record what it made."""
        manifest = self.root / MANIFEST
        try:
            before = set(json.loads(manifest.read_text(encoding="utf-8"))["files"])
        except (OSError, ValueError, KeyError, TypeError):
            before = set()
        for path in sorted(before - self._made):
            target = self.root / path
            if target.is_file():
                target.unlink()
                self.removed.append(path)
                _remove_empty_parents(target.parent, self.root)
        listed = json.dumps({"files": sorted(self._made)}, indent=0).encode()
        try:
            current = manifest.read_bytes()
        except OSError:
            current = None
        if current != listed:  # not counted among the site's files
            manifest.write_bytes(listed)


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
