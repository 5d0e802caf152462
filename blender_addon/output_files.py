"""Output files written atomically with the usual permissions, and output folders checked early.

Every file a handcap command writes (capture files, overlays, .blend/.fbx/.glb) goes through
``atomic_output``: the writer fills a hidden temporary file next to the target, which is renamed
onto the target only when the writer succeeded; on any failure (an exception, Ctrl-C, SIGTERM) the
temporary file is removed, so a reader never sees half a file and nothing is left behind. The file
gets the permissions a plain ``open(path, "w")`` would give (0666 less the umask), not mkstemp's 0600.
Standard library only: the add-on and the engine both use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

TEMP_MARK = ".handcap-tmp"          # in every temporary file's name: ".<name>.<random>.handcap-tmp<ext>"


def usual_mode() -> int:
    """0666 less the process's umask: what ``open(path, "w")`` would create."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def is_temporary(name: str) -> bool:
    """Whether a file name is one of ``atomic_output``'s temporary files."""
    return name.startswith(".") and TEMP_MARK in name


@contextlib.contextmanager
def atomic_output(path: str, create: bool = True) -> Iterator[str]:
    """Yield a temporary path in ``path``'s folder (same extension); rename it onto ``path`` when
    the block ends without an exception and the temporary file is non-empty, else remove it.

    ``create=False`` leaves no file at the temporary path for writers that refuse to overwrite
    one or keep backups of it (Blender's .blend writer keeps ``<file>1``; both are removed).
    """
    path = os.path.abspath(path)
    folder, name = os.path.split(path)
    extension = os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=TEMP_MARK + extension)
    os.close(fd)
    if not create:
        os.unlink(tmp)
    try:
        yield tmp
        if not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
            raise OSError(f"{path}: the writer produced no file")
        os.chmod(tmp, usual_mode())
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + "1"):
            if os.path.lexists(leftover):
                os.unlink(leftover)


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (``atomic_output``: a temporary file renamed onto it)."""
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)


class FolderError(OSError):
    """An output folder that cannot be made or written; the message names it and says why."""


def check_writable_folder(folder: str) -> bool:
    """Make ``folder`` if needed and prove it writable by creating and removing a file in it.

    Returns whether the folder was created here (so a caller that fails later can remove it).
    Raises FolderError naming the folder and the reason."""
    folder = os.path.abspath(folder)
    created = False
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FolderError(f"{folder}: exists and is not a folder")
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder)
            created = True
        except OSError as e:
            raise FolderError(f"{folder}: cannot create the output folder ({e.strerror or e})") from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=TEMP_MARK)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        if created:
            remove_if_empty(folder)
        raise FolderError(f"{folder}: cannot write in the output folder ({e.strerror or e})") from None
    return created


def remove_if_empty(folder: str) -> None:
    """Remove ``folder`` if it is an empty folder; anything else is left alone."""
    with contextlib.suppress(OSError):
        os.rmdir(folder)
