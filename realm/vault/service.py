"""The trainer's vault requests: ping, checkpoint manifests and chunks for oracles, promote
(forwarded to the oracle) and delete.

Files are only ever named by ledger reference plus a file name taken from that checkpoint's own
manifest; nothing from the network is used as a path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

from realm.config import RealmConfig
from realm.errors import RealmError
from realm.hosts import connect_oracle
from realm.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chunk,
    ChunkRequest,
    DeleteCheckpointRequest,
    ErrorReply,
    Manifest,
    ManifestFile,
    ManifestRequest,
    PingRequest,
    Pong,
    PromoteRequest,
)
from realm.vault import champion
from realm.vault.checkpoints import SIDECAR, TEMP_PREFIX, read_sidecar
from realm.vault.merge import MERGED, adapter_bases, plain_folder
from realm.vault.retention import delete_checkpoint_folder

log = logging.getLogger("realm.trainer")

# What an oracle needs to serve a checkpoint: everything but the optimizer/RNG state.
NOT_SHIPPED = frozenset({"training_state.pt"})
CHUNK_HEADROOM = 4096  # bytes of a Chunk reply that are not data


class DeleteRefused(RealmError):
    """A checkpoint that must not be deleted; the message says why."""


VAULT_REQUESTS = (PingRequest, PromoteRequest, ManifestRequest, ChunkRequest, DeleteCheckpointRequest)


class VaultService:
    def __init__(self, config: RealmConfig, home: Path, ledger, publisher, *, role: str = "trainer") -> None:
        self.config = config
        self.home = home
        self.ledger = ledger
        self.publisher = publisher
        self.role = role
        self._digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256
        self._manifests: dict[int, Manifest] = {}
        self._shipped: dict[int, Path] = {}  # step -> the folder its manifest lists (an adapter's merge)

    def handle(self, request):
        if isinstance(request, PingRequest):
            return Pong(role=self.role, run=self.publisher.run, version=PROTOCOL_VERSION, time=time.time())
        if isinstance(request, ManifestRequest):
            return self.manifest(request.ref)
        if isinstance(request, ChunkRequest):
            return self.chunk(request)
        if isinstance(request, PromoteRequest):
            return self.promote(request.ref)
        if isinstance(request, DeleteCheckpointRequest):
            try:
                info = delete_checkpoint(self.config, self.home, self.ledger, request.step)
            except (DeleteRefused, champion.UnknownCheckpoint) as exc:
                return ErrorReply(message=str(exc))
            from realm.protocol import CheckpointDeleted

            self.publisher.emit(CheckpointDeleted(step=info.step, name=info.name))
            self._manifests.pop(info.step, None)
            self._shipped.pop(info.step, None)
            return Ack(message=f"deleted {info.name}")
        raise ValueError(f"unsupported request {type(request).__name__}")

    # ------------------------------------------------------------------ transfer

    def manifest(self, ref: str):
        try:
            info, folder = champion.resolve(self.ledger, ref, self.config.champion)
        except champion.UnknownCheckpoint as exc:
            return ErrorReply(message=str(exc))
        folder = plain_folder(folder)  # an oracle serves a plain model: adapters merged into their base
        sidecar = read_sidecar(folder) or {}
        files = []
        everything = [path for path in sorted(folder.iterdir()) if path.is_file()]
        for path in everything:
            if path.name not in NOT_SHIPPED and not path.name.endswith(".tmp"):
                files.append(ManifestFile(name=path.name, size=path.stat().st_size, sha256=self._digest(path)))
        manifest = Manifest(checkpoint=info, weights_sha256=str(sidecar.get("sha256", "")), files=tuple(files),
                            folder=str(folder), folder_bytes=sum(p.stat().st_size for p in everything))  # fmt: skip
        self._manifests[info.step] = manifest
        self._shipped[info.step] = folder
        return manifest

    def chunk(self, request: ChunkRequest):
        manifest = self._manifests.get(request.step)
        if manifest is None:
            manifest = self.manifest(str(request.step))
            if isinstance(manifest, ErrorReply):
                return manifest
        entry = next((f for f in manifest.files if f.name == request.file), None)
        if entry is None:
            return ErrorReply(message=f"{request.file!r} is not a file of checkpoint {request.step}'s manifest")
        if request.offset < 0 or request.size < 1 or request.offset > entry.size:
            return ErrorReply(
                message=f"bad chunk range: offset {request.offset}, size {request.size} of {entry.size} bytes"
            )
        folder = self._shipped.get(request.step) if self.ledger.path_of(request.step) else None
        if folder is None:
            return ErrorReply(message=f"checkpoint {request.step} is no longer in the vault")
        size = min(request.size, self.config.bus.max_message_bytes - CHUNK_HEADROOM)
        with open(folder / entry.name, "rb") as handle:
            handle.seek(request.offset)
            data = handle.read(size)
        return Chunk(step=request.step, file=entry.name, offset=request.offset, data=data)

    def _digest(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._digests:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._digests[key] = digest.hexdigest()
        return self._digests[key]

    # ------------------------------------------------------------------ promote

    def promote(self, ref: str):
        """Resolve ``ref`` here (so ``champion`` means this ledger's champion) and send it on."""
        from realm.oracle.client import OracleClient, OracleRefused, OracleUnreachable

        try:
            info, _ = champion.resolve(self.ledger, ref, self.config.champion)
        except champion.UnknownCheckpoint as exc:
            return ErrorReply(message=str(exc))
        _, control, setup = connect_oracle(self.config, self.home)
        client = OracleClient(control, timeout_s=min(self.config.bus.timeout_s, 1.0), retries=0, socket_setup=setup)
        try:
            reply = client.request(PromoteRequest(ref=str(info.step)))
        except (OracleUnreachable, OracleRefused) as exc:
            return ErrorReply(message=f"promote {info.name}: {exc}")
        return Ack(message=getattr(reply, "message", "") or f"promoting {info.name}")


def served_step(config: RealmConfig, home: Path) -> tuple[int | None, str]:
    """The step the oracle serves, and a note when that cannot be told."""
    from realm.oracle.client import OracleClient, OracleRefused, OracleUnreachable

    _, control, setup = connect_oracle(config, home)
    try:
        snapshot = OracleClient(control, timeout_s=0.5, retries=0, socket_setup=setup).snapshot()
    except (OracleUnreachable, OracleRefused):
        return None, f"no oracle answered at {control}"
    serving = snapshot.state.oracle.serving
    return (serving.step if serving else None), ""


KEPT = {
    "champion": "is the champion; it is kept (promote or train a better one first)",
    "latest": "is the latest checkpoint; the trainer resumes from it",
    "served": "is being served by the oracle; promote another checkpoint first",
}


def kept_reason(name: str, why: str) -> str:
    """Why checkpoint ``name`` cannot be deleted: it is the ``why`` (a key of ``KEPT``)."""
    return f"{name} {KEPT[why]}"


def delete_checkpoint(config: RealmConfig, home: Path, ledger, step: int):
    """Delete one checkpoint folder and mark it in the ledger; refuse the champion, the served
    checkpoint and the latest one (the trainer resumes from it)."""
    info, folder = champion.resolve(ledger, str(step), config.champion)
    best = champion.champion(ledger, config.champion)
    if best is not None and best.step == info.step:
        raise DeleteRefused(kept_reason(info.name, "champion"))
    present = ledger.present()
    if present and present[-1].step == info.step:
        raise DeleteRefused(kept_reason(info.name, "latest"))
    if info.step in adapter_bases(folder.parent):
        raise DeleteRefused(f"{info.name} is the base of LoRA adapter checkpoints; delete those first")
    serving, _ = served_step(config, home)
    if serving == info.step:
        raise DeleteRefused(kept_reason(info.name, "served"))
    delete_checkpoint_folder(ledger, info.step, folder)
    log.info("deleted %s", info.name)
    return info


def export_checkpoint(ledger, config: RealmConfig, ref: str, destination: Path) -> Path:
    """Copy a checkpoint folder (sidecar included) into ``destination``; return the copy. An
    adapter checkpoint is exported merged into its base: a plain model any HF tool loads."""
    info, folder = champion.resolve(ledger, ref, config.champion)
    folder = plain_folder(folder)
    if destination.exists() and not destination.is_dir():
        raise RealmError(f"{destination} is a file; export copies checkpoint {info.step} into a folder: name a folder")
    target = destination / info.name
    if target.exists():
        raise RealmError(f"{target} already exists; choose another folder or remove it")
    destination.mkdir(parents=True, exist_ok=True)
    partial = destination / f".{info.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(folder, partial, ignore=shutil.ignore_patterns(MERGED, TEMP_PREFIX + "*"))
    if not (partial / SIDECAR).exists():
        raise RealmError(f"{folder} has no {SIDECAR}; the export was not finished")
    os.rename(partial, target)
    return target
