"""Writing files atomically: the one helper behind every file vae_lib writes.

Checkpoints (:mod:`vae_lib.checkpoint`), downloads (:mod:`vae_lib.idx`) and the command
line's JSON and PNG outputs (:mod:`vae_lib.cli`) are all written the same way:

1. a temporary file is created beside the target, named ``.<target>.<host>-<pid>-<random>.tmp``,
   with the permissions ``open()`` would give a new file (``0o666 & ~umask``, not the 0600 of
   ``tempfile``), so that files in a shared class folder stay readable by the group;
2. the caller's ``write(tmp)`` fills it; the data are flushed to disk (``fsync``);
3. ``os.replace`` moves it onto the target in one step, so a reader sees either the old
   file or the whole new one, never half of it.

If ``write`` raises, the temporary file is removed and any previous target is left intact.
A process killed outright (SIGKILL, power loss) cannot clean up after itself; the name of
its temporary file says which target, machine and process it belongs to, so the next write
(or checkpoint load) of that target removes it once that process is gone.
"""
from __future__ import annotations

import os
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Union

__all__ = ["atomic_write", "atomic_write_all", "remove_stale_temps", "check_target", "check_writable_dir",
           "check_writable_file"]

PathLike = Union[str, "os.PathLike[str]"]
Writer = Callable[[Path], object]  # write(tmp): fills the file at tmp

_STALE_AFTER_S = 24 * 3600  # a temp file from another machine this old is litter whatever its pid
_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:32] or "host"


def _temp_pattern(target: Path) -> "re.Pattern[str]":
    """``.<name>.<host>-<pid>-<token>.tmp``: the temp files of ``target`` (groups: host, pid)."""
    return re.compile(rf"^\.{re.escape(target.name)}\.([A-Za-z0-9_]+)-(\d+)-[0-9a-f]+\.tmp$")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (POSIX only: on Windows ``os.kill`` would stop it)."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists but belongs to someone else (or cannot tell): keep
        return True
    return True


def remove_stale_temps(target: PathLike) -> List[Path]:
    """Remove the temporary files that killed writers of ``target`` left beside it.

    A temp file is stale when the process that made it (on this machine) no longer exists,
    or when it comes from another machine (or the platform cannot tell which processes
    exist) and is over a day old. Temp files of live writers are kept. Errors are ignored
    (cleaning is best effort). Returns the paths removed.
    """
    target = Path(target)
    pattern, removed = _temp_pattern(target), []
    try:
        entries = list(os.scandir(target.parent if str(target.parent) else "."))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None:
            continue
        host, pid = m.group(1), int(m.group(2))
        try:
            if host == _HOST and os.name == "posix":
                stale = pid != os.getpid() and not _pid_alive(pid)
            else:
                stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > _STALE_AFTER_S
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _new_temp(target: Path) -> Path:
    """Create an empty temp file beside ``target`` with mode ``0o666 & ~umask`` (as ``open()`` would)."""
    while True:
        tmp = target.with_name(f".{target.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:  # 32 random bits collided: draw again
            continue
        os.close(fd)
        return tmp


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; best effort where the platform refuses."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_target(target: PathLike) -> Path:
    """Raise unless ``target`` can be (over)written as a file: it must not be a folder, nor sit in a file.

    Raises:
        IsADirectoryError: ``target`` is a folder.
        NotADirectoryError: its parent is a file.
    """
    target = Path(target)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {target}: it is a folder; choose a file name, or remove the folder")
    if target.parent.exists() and not target.parent.is_dir():
        raise NotADirectoryError(f"cannot write {target}: {target.parent} is a file, not a folder")
    return target


def atomic_write_all(writes: Mapping[PathLike, Writer]) -> List[Path]:
    """Write several files so that either all of them appear, or none that did not exist before.

    ``writes`` maps each target path to ``write(tmp)``, a function that fills the file
    ``tmp`` (a :class:`~pathlib.Path`; e.g. ``lambda tmp: fig.savefig(tmp)``). Every file is
    first written to its own temp file beside its target; only when all writes succeeded
    are they moved into place, in the order given (put the file that marks a complete
    result, such as a checkpoint, last). If a write fails, every temp file is removed and no
    target is touched. If moving one into place fails, the targets this call had newly
    created are removed again. Parent folders are created as needed.

    Returns:
        The target paths, in the order given.

    Raises:
        IsADirectoryError: a target is a folder.
        NotADirectoryError: a target's parent is a file.
        Exception: whatever a ``write`` raises, re-raised after the temporary files are removed.
    """
    targets = [Path(p) for p in writes]
    for target in targets:
        check_target(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
    temps: Dict[Path, Path] = {}
    try:
        for target, write in zip(targets, writes.values()):
            tmp = temps[target] = _new_temp(target)
            write(tmp)
            if not tmp.is_file():
                raise FileNotFoundError(f"writing {target}: the writer removed or never created its file {tmp}")
            _fsync(tmp)
        created: List[Path] = []
        try:
            for target in targets:
                existed = target.exists()
                os.replace(temps[target], target)  # atomic: readers see the old or the new file
                del temps[target]
                if not existed:
                    created.append(target)
        except BaseException:
            for target in created:  # leave nothing new behind
                target.unlink(missing_ok=True)
            raise
        for folder in {t.parent for t in targets}:
            _fsync(folder)  # make the renames themselves durable
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return targets


def atomic_write(path: PathLike, write: Writer) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, then move it onto ``path`` atomically.

    A failure inside ``write`` leaves any previous file at ``path`` intact and no temp file
    behind; the new file gets the permissions ``open()`` would give it (``0o666 & ~umask``).
    See :func:`atomic_write_all` for several files at once. Returns ``Path(path)``.
    """
    return atomic_write_all({path: write})[0]


def check_writable_dir(folder: PathLike) -> Path:
    """Create ``folder`` (with its parents) if needed and check that files can be written in it.

    Use it before long work whose results go there, so that a bad path fails in the first
    second, not after an hour of training. Returns ``Path(folder)``.

    Raises:
        NotADirectoryError: ``folder`` (or one of its parents) is a file.
        PermissionError: files cannot be created in ``folder``.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a folder; choose another path or remove the file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:  # a parent is a file
        raise NotADirectoryError(f"cannot create the folder {folder}: {e.filename} is a file") from e
    except NotADirectoryError as e:
        raise NotADirectoryError(f"cannot create the folder {folder}: a part of that path is a file") from e
    except PermissionError as e:
        raise PermissionError(f"cannot create the folder {folder}: permission denied; choose a folder you "
                              f"can write to") from e
    try:
        probe = _new_temp(folder / "write-check")
    except OSError as e:
        raise PermissionError(f"cannot write files in {folder} ({e.strerror or e}); choose a folder you can "
                              f"write to") from e
    probe.unlink(missing_ok=True)
    return folder


def check_writable_file(path: PathLike) -> Path:
    """Check, before long work, that the file ``path`` can be written: :func:`check_target`,
    then :func:`check_writable_dir` on its folder (created if needed). Returns ``Path(path)``."""
    path = check_target(path)
    check_writable_dir(path.parent if str(path.parent) else ".")
    return path
