"""Files written whole or not at all, and files read with one wording for why they cannot be."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from realm.errors import RealmError


class UnreadableFile(RealmError):
    """A file that cannot be read; ``reason`` says why in words a user acts on."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class FileTooBig(UnreadableFile):
    def __init__(self, path: Path, size: int, max_bytes: int) -> None:
        self.size = size
        super().__init__(path, f"{size:,} bytes, more than the {max_bytes:,} allowed")


def atomic_write(path: Path, data: str | bytes, *, private: bool = False) -> Path:
    """Write ``path`` whole or not at all: a hidden ``.NAME.tmp`` beside it (the inbox and the
    quest folders skip dot files), fsynced, then renamed over ``path``.

    ``private`` makes the file readable by this user only (0600), like the keys: quest data and
    the lines rejected from it may be anyone's secrets, never readable by others because the
    umask says so.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    with open(fd, "wb") as handle:
        if private:
            os.fchmod(handle.fileno(), 0o600)  # a tmp left by an earlier crash kept its old mode
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """``path``'s bytes; ``UnreadableFile`` when there are none to read: a regular file only (a
    device such as /dev/zero never ends, a pipe blocks until someone writes), of at most
    ``max_bytes`` when given."""
    try:
        if not stat.S_ISREG((info := path.stat()).st_mode):
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a folder")
            raise UnreadableFile(path, "not a regular file (a device, pipe or socket): give a file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise FileTooBig(path, info.st_size, max_bytes)
        return path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(path, unreadable(exc)) from None


def unreadable(exc: OSError) -> str:
    """Why a file could not be read, for a message that starts with its name."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a quest file"
    return f"cannot read the file ({exc.strerror or exc})"
