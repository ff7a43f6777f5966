"""One checkpoint, everything known about it: its marks, scores and lineage from the state at
once, then its folder, size, files and sidecar as the trainer answers (a ``ManifestRequest`` and
a ``ChunkRequest`` for the sidecar file: the vault lives on the trainer's host)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from realm.game.narration import counted, suite_line
from realm.protocol import CheckpointInfo, Chunk, ChunkRequest, Manifest, ManifestRequest, Reply, Request
from realm.tui import format as fmt
from realm.tui.screens.quest_detail import FactSheet, source_words
from realm.tui.view import RealmView
from realm.vault.checkpoints import SIDECAR

Ask = Callable[[Request], Awaitable["Reply | None"]]
MARK_WORDS = {"champion": "the champion (best suite score)", "latest": "the latest"}
ASKING = "asking the trainer…"


def size_text(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def mark_words(what: str, step: int, marks) -> str:
    if what == "served":
        return "served by oracle " + ", ".join(marks.nodes_serving(step))
    return MARK_WORDS[what]


def quest_words(name: str | None, view: RealmView) -> str:
    if name is None:
        return "none (saved between quests)"
    state = view.state
    known = [*state.board.recent, *state.board.queued, *([state.battle.quest] if state.battle.quest else [])]
    source = next((q.source for q in known if q.name == name), None)
    return f"{name} · source: {source_words(source)}" if source else name


def lineage(ckpt: CheckpointInfo, view: RealmView) -> str:
    """Its parent in the vault and the quest it was saved in (the steps between may span many)."""
    during = f"saved during {ckpt.quest}" if ckpt.quest else "saved between quests"
    before = [c for c in view.state.vault.checkpoints if c.step < ckpt.step]
    if not before:
        return f"the oldest checkpoint in the vault; {during}"
    parent = max(before, key=lambda c: c.step)
    return f"{counted(ckpt.step - parent.step, 'step')} after {parent.name} (step {parent.step:,}); {during}"


def state_facts(ckpt: CheckpointInfo, view: RealmView, marks) -> list[tuple[str, str]]:
    kinds = marks.kinds(ckpt.step)
    facts = [
        ("step", f"{ckpt.step:,}"),
        ("marks", ", ".join(f"{sign} {mark_words(what, ckpt.step, marks)}" for sign, what in kinds) or "none"),
        ("saved", fmt.clock(ckpt.time)),
        ("quest", quest_words(ckpt.quest, view)),
        ("lineage", lineage(ckpt, view)),
        ("train loss", fmt.loss(ckpt.train_loss)),
        ("quest val", f"{fmt.loss(ckpt.val_loss)} (the quest's own held-out loss: not comparable across quests)"),
    ]
    suite = ckpt.suite
    if suite is None:
        facts.append(("suite", "not scored yet"))
    else:
        facts.append(("suite", f"{suite_line(suite)} (suite {suite.version})"))
        parts = [f"{name} loss {loss:.4f}" for name, loss in suite.files]
        parts += [f"{skill} accuracy {acc:.0%}" for skill, acc in suite.skills]
        if parts:
            facts.append(("suite sets", "\n".join(parts)))
    return facts


def trainer_facts(manifest: Manifest, sidecar: dict | None) -> list[tuple[str, str]]:
    shipped = sum(f.size for f in manifest.files)
    facts = [
        ("folder", manifest.folder or "not told (an older trainer)"),
        ("size", f"{size_text(manifest.folder_bytes)} in all; {size_text(shipped)} shipped to an oracle"),
        ("files", "\n".join(f"{f.name}  {size_text(f.size)}" for f in manifest.files)),
    ]
    if sidecar is None:
        facts.append(("sidecar", f"{SIDECAR} could not be read"))
    else:
        lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in sorted(sidecar.items())]
        facts.append(("sidecar", f"{SIDECAR}\n" + "\n".join(lines)))
    return facts


class CheckpointDetail(FactSheet):
    def __init__(self, ckpt: CheckpointInfo, view: RealmView, marks, ask: Ask | None) -> None:
        self.known = state_facts(ckpt, view, marks)
        waiting = ASKING if ask else "not asked: this view follows no trainer"
        super().__init__(ckpt.name, [*self.known, ("folder", waiting)])
        self.ckpt = ckpt
        self.ask = ask

    def on_mount(self) -> None:
        super().on_mount()
        if self.ask is not None and self.fact("folder") == ASKING:
            self.run_worker(self.fetch(), exclusive=True)

    async def fetch(self) -> None:
        try:
            manifest = await self.ask(ManifestRequest(ref=str(self.ckpt.step)))
        except Exception as exc:  # a reply we cannot read: say so in the pane
            manifest = exc
        if not isinstance(manifest, Manifest):
            why = getattr(manifest, "message", None) or "the trainer did not answer"
            await self.show_facts([*self.known, ("folder", f"unknown: {why}")])
            return
        await self.show_trainer_facts(manifest, await self.sidecar(manifest))

    async def sidecar(self, manifest: Manifest) -> dict | None:
        entry = next((f for f in manifest.files if f.name == SIDECAR), None)
        if entry is None:
            return None
        try:
            reply = await self.ask(ChunkRequest(step=self.ckpt.step, file=SIDECAR, offset=0, size=entry.size))
            return json.loads(reply.data) if isinstance(reply, Chunk) else None
        except (ValueError, TypeError):
            return None

    async def show_trainer_facts(self, manifest: Manifest, sidecar: dict | None) -> None:
        if self.is_attached:
            await self.show_facts([*self.known, *trainer_facts(manifest, sidecar)])
