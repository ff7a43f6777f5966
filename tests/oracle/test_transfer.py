"""Checkpoint transfer over the bus: credit-based chunks, sha256 checks, resume after a cut, the cache."""

from __future__ import annotations

import msgspec
import pytest
from conftest import fast_config

from realm.bus import ControlServer, Publisher
from realm.config import BusConfig
from realm.home import Home
from realm.oracle.transfer import PARTIAL, CheckpointCache, Fetcher, TransferError
from realm.protocol import ChunkRequest, ErrorReply, ManifestRequest, PauseRequest, Sampling
from realm.vault.checkpoints import weights_sha256
from realm.vault.ledger import Ledger
from realm.vault.service import VaultService
from tests.oracle.conftest import add_checkpoint, oracle_config
from tests.oracle.reference import generate_answers

CHUNK = 64 * 1024


class Cut(Exception):
    """The connection 'drops' after a number of chunks."""


@pytest.fixture
def vault_server(tmp_path):
    """A trainer-side vault: real checkpoints, the real VaultService behind a real ROUTER."""
    home = tmp_path / "trainer"
    folders = [add_checkpoint(home, step) for step in (1, 2, 3)]
    ledger = Ledger(Home(home).db)
    publisher = Publisher(f"ipc://{tmp_path}/run/pub", "run-t")
    service = VaultService(fast_config(), home, ledger, publisher)
    endpoint = f"ipc://{tmp_path}/run/ctl"
    server = ControlServer(endpoint, service.handle, publisher).start()
    yield endpoint, folders, service
    server.stop()
    publisher.close()
    ledger.close()


def fetcher(endpoint, root, limit_mb=64, **kwargs) -> Fetcher:
    return Fetcher(
        endpoint, CheckpointCache(root, limit_mb * 2**20), chunk_bytes=CHUNK, credit=4, timeout_s=5, **kwargs
    )


def test_fetch_verifies_every_file_and_skips_the_training_state(vault_server, tmp_path):
    endpoint, folders, _ = vault_server
    pull = fetcher(endpoint, tmp_path / "cache")
    manifest, folder, fetched = pull.fetch("2")
    assert fetched and folder.name == folders[1].name
    names = sorted(p.name for p in folder.iterdir())
    assert "training_state.pt" not in names and "model.safetensors" in names and ".ledger.json" in names
    assert weights_sha256(folder) == manifest.weights_sha256 == weights_sha256(folders[1])
    assert not list(folder.rglob(f"*{PARTIAL}"))
    assert pull.chunks_received > 4  # many chunks: the credit window was used

    again = fetcher(endpoint, tmp_path / "cache")
    assert again.fetch("checkpoint-2-20260101-1200")[1:] == (folder, False)
    assert again.chunks_received == 0  # served from the cache


def test_a_cut_transfer_resumes_where_it_stopped_and_verifies(vault_server, tmp_path):
    endpoint, folders, _ = vault_server
    total = sum(f.size for f in fetcher(endpoint, tmp_path / "cache").manifest("3").files)

    def cut_after(n):
        seen = []

        def on_chunk(chunk):
            seen.append(chunk)
            if len(seen) == n:
                raise Cut()

        return on_chunk

    first = fetcher(endpoint, tmp_path / "cache")
    with pytest.raises(Cut):
        first.fetch("3", on_chunk=cut_after(20))
    incoming = tmp_path / "cache" / f".incoming-{folders[2].name}"
    assert list(incoming.glob(f"*{PARTIAL}")), "the cut left no partial file to resume from"

    second = fetcher(endpoint, tmp_path / "cache")
    manifest, folder, fetched = second.fetch("3")
    assert fetched and weights_sha256(folder) == weights_sha256(folders[2])
    assert first.bytes_received + second.bytes_received == total  # not one byte fetched twice
    assert not incoming.exists()


def test_a_corrupted_partial_is_caught_and_discarded(vault_server, tmp_path):
    endpoint, folders, _ = vault_server
    first = fetcher(endpoint, tmp_path / "cache")

    def cut(chunk):
        if chunk.offset >= 3 * CHUNK and chunk.file == "model.safetensors":
            raise Cut()

    with pytest.raises(Cut):
        first.fetch("1", on_chunk=cut)
    partial = tmp_path / "cache" / f".incoming-{folders[0].name}" / f"model.safetensors{PARTIAL}"
    data = bytearray(partial.read_bytes())
    data[100] ^= 0xFF
    partial.write_bytes(bytes(data))

    with pytest.raises(TransferError, match="sha256 mismatch"):
        fetcher(endpoint, tmp_path / "cache").fetch("1")
    assert not partial.exists()
    manifest, folder, _ = fetcher(endpoint, tmp_path / "cache").fetch("1")  # starts over, and succeeds
    assert weights_sha256(folder) == weights_sha256(folders[0])


def test_the_cache_evicts_the_least_recently_used_within_its_limit(vault_server, tmp_path):
    endpoint, folders, _ = vault_server
    size_mb = sum(f.size for f in fetcher(endpoint, tmp_path / "c").manifest("1").files) / 2**20
    pull = fetcher(endpoint, tmp_path / "cache", limit_mb=2.5 * size_mb)
    pull.fetch("1")
    pull.fetch("2")
    pull.fetch("1")  # 1 is now the most recently used
    pull.fetch("3")
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert cached == [folders[0].name, folders[2].name]
    assert pull.cache.used_bytes() <= pull.cache.limit_bytes

    with pytest.raises(TransferError, match="oracle.cache_limit_mb allows only"):
        fetcher(endpoint, tmp_path / "tiny", limit_mb=0.1).fetch("1")


def test_files_are_named_only_through_a_manifest(vault_server):
    _, _, service = vault_server
    for name in ("../realm.db", "training_state.pt", "/etc/passwd", ""):
        reply = service.handle(ChunkRequest(step=1, file=name, offset=0, size=10))
        assert isinstance(reply, ErrorReply) and "manifest" in reply.message
    assert "not a checkpoint reference" in service.handle(ManifestRequest(ref="/etc/passwd")).message
    assert "bad chunk range" in service.handle(ChunkRequest(step=1, file="config.json", offset=-5, size=10)).message
    assert isinstance(service.handle(ManifestRequest(ref="champion")), ErrorReply)  # nothing scored yet


def test_an_oracle_on_another_home_fetches_from_the_trainer_and_answers_the_same(
    tmp_path, oracle_factory, trainer_factory
):
    trainer_home = tmp_path / "trainer"
    folder = add_checkpoint(trainer_home, 4)
    trainer = trainer_factory(fast_config(), home=trainer_home).start()
    trainer.client.request(PauseRequest())
    config = oracle_config(load_on_start="4")
    config = msgspec.structs.replace(config, bus=BusConfig(control=trainer.control, pub=trainer.pub))
    oracle = oracle_factory(config, home=tmp_path / "oracle")
    serving = oracle.wait_serving(4)
    assert serving.source == "fetched"
    assert (tmp_path / "oracle" / "oracle-cache" / folder.name / "model.safetensors").exists()
    text, _ = oracle.client.chat([{"role": "user", "content": "2+2="}], Sampling(max_new_tokens=12))
    assert text == generate_answers(folder, ["2+2="], 12)[0]
