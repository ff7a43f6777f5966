"""Checkpoint transfer over the bus, after the ZeroMQ guide's file-transfer chapter (model 3).

The oracle asks the trainer for a checkpoint's manifest (every file with its size and sha256,
plus the ledger's digest over the weights), then pulls each file in chunks with a bounded
number of chunk requests in flight (credit). Bytes go to ``FILE.partial`` inside a hidden
``.incoming-NAME`` folder; a finished file is checked against its sha256 and renamed. A cut
transfer resumes from what its ``.partial`` files already hold. When every file is in, the
weights digest is checked against the ledger's, and the folder is renamed into the cache.

The cache holds whole checkpoints under a size limit; the least recently used go first, never
one that is pinned (served or loading).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import zmq

from realm import protocol
from realm.bus import LazyPirateClient
from realm.errors import RealmError
from realm.protocol import Chunk, ChunkRequest, ErrorReply, Manifest, ManifestRequest
from realm.vault.checkpoints import fsync_dir, weights_sha256

log = logging.getLogger("realm.oracle")

COMPLETE = ".complete"  # marker in a cached checkpoint: the manifest it was verified against
INCOMING = ".incoming-"
PARTIAL = ".partial"


class TransferError(RealmError):
    """A transfer that failed; what was received so far is kept for a resume."""


# --------------------------------------------------------------------------- cache


class CheckpointCache:
    def __init__(self, root: Path, limit_bytes: int) -> None:
        self.root = root
        self.limit_bytes = limit_bytes
        root.mkdir(parents=True, exist_ok=True)

    def folder(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise TransferError(f"refusing a checkpoint name that is not a plain folder name: {name!r}")
        return self.root / name

    def lookup(self, manifest: Manifest) -> Path | None:
        """The cached folder for this manifest, marked as just used; None when absent or stale."""
        folder = self.folder(manifest.checkpoint.name)
        marker = folder / COMPLETE
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if recorded.get("weights_sha256") != manifest.weights_sha256:
            return None
        recorded["used"] = time.time_ns()  # the LRU clock (file mtimes can be too coarse)
        marker.write_text(json.dumps(recorded), encoding="utf-8")
        return folder

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last used, bytes, folder) for every complete cached checkpoint, least recent first."""
        found = []
        for folder in self.root.iterdir():
            marker = folder / COMPLETE
            if folder.is_dir() and marker.is_file():
                try:
                    used = int(json.loads(marker.read_text(encoding="utf-8")).get("used", 0))
                except (OSError, ValueError, TypeError):
                    used = 0
                found.append((used, _tree_bytes(folder), folder))
        return sorted(found)

    def used_bytes(self) -> int:
        return sum(_tree_bytes(path) for path in self.root.iterdir() if path.is_dir())

    def make_room(self, needed: int, pinned: Iterable[Path] = ()) -> list[Path]:
        """Evict least recently used checkpoints until ``needed`` more bytes fit; return them."""
        pinned = {Path(p).resolve() for p in pinned}
        if needed > self.limit_bytes:
            raise TransferError(
                f"the checkpoint needs {needed / 1e6:.1f} MB but oracle.cache_limit_mb allows only "
                f"{self.limit_bytes / 1e6:.1f} MB: raise the limit"
            )
        evicted = []
        used = self.used_bytes()
        for _, size, folder in self.entries():
            if used + needed <= self.limit_bytes:
                break
            if folder.resolve() in pinned:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            used -= size
            evicted.append(folder)
            log.info("cache: evicted %s (%.1f MB)", folder.name, size / 1e6)
        if used + needed > self.limit_bytes:
            raise TransferError(
                f"the cache cannot make room for {needed / 1e6:.1f} MB: the rest is in use; raise oracle.cache_limit_mb"
            )
        return evicted


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the client side


class Fetcher(LazyPirateClient):
    """Pulls checkpoints from a trainer's control endpoint into a cache."""

    def __init__(
        self,
        endpoint: str,
        cache: CheckpointCache,
        *,
        chunk_bytes: int = 262144,
        credit: int = 8,
        timeout_s: float = 5.0,
        **kwargs,
    ) -> None:
        super().__init__(endpoint, timeout_s=timeout_s, **kwargs)
        self.cache = cache
        self.chunk_bytes = chunk_bytes
        self.credit = credit
        self.chunks_received = 0
        self.bytes_received = 0

    def manifest(self, ref: str) -> Manifest:
        with self._socket() as sock:
            try:
                reply = self._ask(sock, ManifestRequest(ref=ref))
            except _NoAnswer:
                raise TransferError(
                    f"no trainer answered at {self.endpoint} within {self.timeout_s:g}s: the checkpoint is not "
                    "on this machine's disk, so the trainer must be up to send it"
                ) from None
        if not isinstance(reply, Manifest):
            raise TransferError(f"the trainer sent {type(reply).__name__} for a manifest request")
        return reply

    def fetch(
        self, ref: str, *, pinned: Iterable[Path] = (), on_chunk: Callable[[Chunk], None] | None = None
    ) -> tuple[Manifest, Path, bool]:
        """(manifest, cached folder, whether bytes were fetched) for ``ref``."""
        manifest = self.manifest(ref)
        cached = self.cache.lookup(manifest)
        if cached is not None:
            return manifest, cached, False
        name = manifest.checkpoint.name
        final = self.cache.folder(name)
        incoming = self.cache.root / f"{INCOMING}{name}"
        incoming.mkdir(parents=True, exist_ok=True)
        have = _tree_bytes(incoming)
        self.cache.make_room(max(0, sum(f.size for f in manifest.files) - have), pinned=[*pinned, incoming])
        for entry in manifest.files:
            self._fetch_file(manifest, entry, incoming, on_chunk)
        digest = weights_sha256(incoming)
        if digest != manifest.weights_sha256:
            shutil.rmtree(incoming, ignore_errors=True)
            raise TransferError(
                f"{name}: the weights' digest {digest[:12]}... does not match the ledger's "
                f"{manifest.weights_sha256[:12]}...; the files were discarded"
            )
        marker = {
            "weights_sha256": manifest.weights_sha256,
            "step": manifest.checkpoint.step,
            "fetched": time.time(),
            "used": time.time_ns(),
        }
        (incoming / COMPLETE).write_text(json.dumps(marker), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.rename(incoming, final)
        fsync_dir(self.cache.root)
        return manifest, final, True

    def _fetch_file(self, manifest: Manifest, entry, folder: Path, on_chunk) -> None:
        if "/" in entry.name or entry.name.startswith("..") or entry.name in ("", ".", COMPLETE):
            raise TransferError(f"the manifest names a file that is not a plain file name: {entry.name!r}")
        target = folder / entry.name
        if target.is_file() and target.stat().st_size == entry.size:
            return  # finished and verified before the cut
        partial = folder / (entry.name + PARTIAL)
        attempts = 0
        while True:
            try:
                digest = self._pull(manifest.checkpoint.step, entry, partial, on_chunk)
                break
            except _NoAnswer:
                attempts += 1
                if attempts > self.retries:
                    raise TransferError(
                        f"the trainer at {self.endpoint} stopped answering while sending {entry.name}; "
                        f"{partial.stat().st_size if partial.exists() else 0} of {entry.size} bytes are kept "
                        "and the next load resumes from there"
                    ) from None
        if digest != entry.sha256:
            partial.unlink()
            raise TransferError(f"{entry.name}: sha256 mismatch after transfer; the partial file was discarded")
        os.rename(partial, target)

    def _pull(self, step: int, entry, partial: Path, on_chunk) -> str:
        """Fill ``partial`` up to the file's size, ``credit`` chunk requests in flight; return
        the sha256 of the whole file (what a cut left behind is hashed first)."""
        offset = partial.stat().st_size if partial.exists() else 0
        if offset > entry.size:
            partial.unlink()
            offset = 0
        digest = _file_sha256(partial, raw=True) if offset else hashlib.sha256()
        with self._socket() as sock, open(partial, "ab") as out:
            next_offset = offset
            in_flight = 0
            while offset < entry.size:
                while in_flight < self.credit and next_offset < entry.size:
                    size = min(self.chunk_bytes, entry.size - next_offset)
                    request = ChunkRequest(step=step, file=entry.name, offset=next_offset, size=size)
                    sock.send_multipart([b"", protocol.encode(request)])
                    next_offset += size
                    in_flight += 1
                reply = self._receive(sock)
                in_flight -= 1
                if isinstance(reply, ErrorReply):
                    raise TransferError(f"the trainer refused a chunk of {entry.name}: {reply.message}")
                if not isinstance(reply, Chunk) or reply.file != entry.name or reply.offset != offset:
                    raise TransferError(f"an unexpected reply while fetching {entry.name}")
                if not reply.data:
                    raise TransferError(f"{entry.name} is shorter on the trainer than its manifest says")
                out.write(reply.data)
                digest.update(reply.data)
                offset += len(reply.data)
                self.chunks_received += 1
                self.bytes_received += len(reply.data)
                if on_chunk is not None:
                    on_chunk(reply)
            out.flush()
            os.fsync(out.fileno())
        return digest.hexdigest()

    # ------------------------------------------------------------------ sockets

    def _ask(self, sock: zmq.Socket, request):
        sock.send_multipart([b"", protocol.encode(request)])
        reply = self._receive(sock)
        if isinstance(reply, ErrorReply):
            raise TransferError(f"the trainer at {self.endpoint} says: {reply.message}")
        return reply

    def _receive(self, sock: zmq.Socket):
        if not sock.poll(int(self.timeout_s * 1000), zmq.POLLIN):
            raise _NoAnswer()
        frames = sock.recv_multipart()
        return protocol.decode_reply(frames[-1])


class _NoAnswer(Exception):
    pass


def _file_sha256(path: Path, raw: bool = False):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest if raw else digest.hexdigest()
