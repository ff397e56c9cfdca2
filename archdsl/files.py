"""Reading specs and writing outputs safely.

Reading: only regular files, at most the `file_bytes` limit, never blocking on a FIFO or reading a
device until memory runs out; bytes that are not UTF-8 are a located error. Writing: never a
half-written or clobbered file: a temporary file beside the target, then a rename; targets that
are directories, devices, FIFOs, sockets, symbolic links or read-only files are refused with a
clear error, and a replaced file keeps its permissions.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from archdsl import limits
from archdsl.diagnostics import ArchError, Diagnostic, Span, UsageError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


class ReadError(Exception):
    """A spec file could not be read; `reason` says why in words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _kind(mode: int) -> str:
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a regular file of at most `file_bytes` bytes; raises ReadError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except ValueError:
        raise ReadError("the path contains a NUL character") from None
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReadError(f"it is {_kind(info.st_mode)}, not a spec file")
        cap = limits.value("file_bytes")
        if info.st_size > cap:
            raise ReadError(f"it has {info.st_size:,} bytes, over the limit on {limits.LIMITS['file_bytes'].what} "
                            f"({cap:,}); {limits.how_to_raise('file_bytes')}")
        chunks, size = [], 0
        while size <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > cap:
            raise ReadError(f"it has more than {cap:,} bytes; {limits.how_to_raise('file_bytes')}")
        return b"".join(chunks)
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def decode_spec(data: bytes, file: str) -> str:
    """UTF-8 text of a spec; a byte that is not UTF-8 is an error at its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start].decode("utf-8", errors="replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        shown = data.decode("utf-8", errors="backslashreplace")
        raise ArchError(Diagnostic(f"the file is not UTF-8 text: byte 0x{data[exc.start]:02x} at {line}:{col}",
                                   Span(file, line, col, line, col + 1),
                                   "save the spec as UTF-8"), {file: shown}) from None


def check_output(path: str | Path) -> Path:
    """Refuse an output path that cannot be replaced by a regular file; returns it as a Path."""
    raw = str(path)
    path = Path(path)
    if raw == "" or raw.endswith(os.sep):
        raise _refuse(raw, "it names a directory", "name a file, e.g. out/net.py")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        info = None  # a parent is a file: said below
    except (OSError, ValueError) as exc:
        raise _refuse(raw, getattr(exc, "strerror", None) or "the path is not valid", "name a writable file") from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(raw, f"it is {_kind(info.st_mode)}", "name a regular file (it is replaced)")
        if not os.access(path, os.W_OK) or not info.st_mode & stat.S_IWUSR:  # (root may write anything)
            raise _refuse(raw, "it is read-only", "make it writable (chmod u+w) or name another file")
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if os.path.lexists(parent) and not parent.is_dir():
        raise _refuse(raw, f"{parent} is not a directory", "name a file inside a directory")
    return path


def _refuse(path: str, why: str, help: str) -> UsageError:
    return UsageError(Diagnostic(f"cannot write {path!r}: {why}", help=help))


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` (keeping its permissions)."""
    path = check_output(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(os.stat(path).st_mode) if path.exists() else None
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    except OSError as exc:
        raise _refuse(str(path), exc.strerror or str(exc), "name a file in a writable directory") from None
    try:
        with open(tmp, "wb") as handle:  # plain open: a new file gets the user's usual permissions
            handle.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _refuse(str(path), exc.strerror or str(exc), "name a file in a writable directory") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
