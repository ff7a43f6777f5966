"""A full disk, for real, and the deletes retention makes: a retention delete cut short by a kill
is finished at the next start."""

from __future__ import annotations

from conftest import fast_config
from realm.config import RealmConfig, VaultConfig
from realm.vault.checkpoints import TEMP_PREFIX, complete_checkpoints
from realm.vault.ledger import Ledger
from realm.vault.retention import DOOMED_PREFIX


def test_a_retention_delete_cut_short_by_a_kill_is_finished_at_the_next_start(trainer_factory, tmp_path):
    home = tmp_path / "home"
    config = RealmConfig(train=fast_config(checkpoint_every=3).train, skills=fast_config().skills,
                         vault=VaultConfig(keep_last=5, keep_best=0))  # fmt: skip
    assert trainer_factory(config, max_steps=9, home=home).start().join() == 0
    checkpoints = home / "vault" / "checkpoints"
    oldest = complete_checkpoints(checkpoints)[0]
    oldest.rename(oldest.with_name(DOOMED_PREFIX + oldest.name))  # where a kill mid-prune leaves it

    second = trainer_factory(config, max_steps=1, home=home).start()
    assert second.join() == 0
    ledger = Ledger(home / "vault" / "realm.db")
    rows = {info.step: status for info, status in ledger.list_checkpoints(include_missing=True)}
    ledger.close()
    assert rows[3] == "deleted"
    assert not any(p.name.startswith(TEMP_PREFIX) for p in checkpoints.iterdir())
    texts = [line.text for line in second.state.log]
    assert any("finished deleting " + oldest.name in text for text in texts)
    assert not any("missing from disk" in text for text in texts)
