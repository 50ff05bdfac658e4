"""A run folder's ``_lock``: one job writes a run folder at a time. The holder refreshes it in the
background; a holder that is gone (its process, on this host; its refreshes, elsewhere) leaves a
stale lock that the next job takes over. ``RunFolder`` holds it while a job writes."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time

#: A lock whose holder has not refreshed it for this long is stale (its job died elsewhere).
LOCK_STALE_S = 120
LOCK_REFRESH_S = 20


class OutputError(ValueError):
    """The output location cannot be used (another run's folder, a lock held, not writable)."""


class FolderLock:
    """The lock of the run folder at ``root`` on filesystem ``fs`` (``url``: its name in errors)."""

    def __init__(self, fs, root: str, url: str):
        self.fs, self.root, self.url = fs, root, url

    def _put(self, obj: dict) -> None:
        """Written aside and moved: a reader never sees half a lock."""
        with self.fs.open(f"{self.root}/._lock.tmp", "w") as f:
            json.dump(obj, f, indent=2)
        self.fs.mv(f"{self.root}/._lock.tmp", f"{self.root}/_lock")

    def held(self) -> dict | None:
        """The lock a live job holds on this folder (see ``alive``), or None."""
        try:
            with self.fs.open(f"{self.root}/_lock", "r") as f:
                held = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return held if alive(held) else None

    def check(self) -> None:
        """``OutputError`` if a live job holds the lock."""
        held = self.held()
        if held is not None:
            raise OutputError(
                f"output: {self.url} is being written by another job ({held['host']} pid "
                f"{held['pid']}, since {time.strftime('%H:%M:%S', time.localtime(held['started']))}); "
                f"wait for it, or choose another output.run_id"
            )

    @contextlib.contextmanager
    def hold(self):
        """Hold ``_lock`` while the job writes, refreshed in the background; a dead holder's lock
        (its process is gone, or it stopped refreshing) is taken over."""
        self.check()
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "token": os.urandom(8).hex()}
        self._put({**me, "refreshed": time.time()})
        with self.fs.open(f"{self.root}/_lock", "r") as f:  # two takers at once: the last write wins, the other sees it
            if json.load(f).get("token") != me["token"]:
                raise OutputError(f"output: {self.url} was just locked by another job")
        stop = threading.Event()

        def refresh():
            while not stop.wait(LOCK_REFRESH_S):
                with contextlib.suppress(OSError):
                    self._put({**me, "refreshed": time.time()})

        thread = threading.Thread(target=refresh, daemon=True, name="run-folder-lock")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            with contextlib.suppress(OSError):
                self.fs.rm(f"{self.root}/_lock")


def alive(lock: dict) -> bool:
    """Whether a lock's holder still runs: on this host, its process; elsewhere, its refreshes."""
    if lock.get("host") == socket.gethostname():
        try:
            os.kill(int(lock["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return int(lock["pid"]) != os.getpid()  # our own pid: a lock this process left behind
    return lock.get("refreshed", 0) > time.time() - LOCK_STALE_S
