"""The pure pieces behind the screens: view models, narration, the away summary, reasons."""

from __future__ import annotations

import msgspec

from realm.game.narration import narrate
from realm.protocol import (
    BattleChanged,
    BattleState,
    CheckpointInfo,
    Journal,
    JournalEntry,
    QuestFinished,
    QuestInfo,
    QuestResult,
    RealmState,
    SuiteScore,
    TrainerInfo,
    TrainerStarted,
    VaultState,
)
from realm.state import apply, level_up
from realm.tui import demo
from realm.tui import format as fmt
from realm.tui.actions import (
    EMPTY_VAULT,
    HELP_ACTIONS,
    NO_ANSWER,
    NO_ORACLE_NODE,
    NOT_GENERATING,
    STILL_ANSWERING,
    ChatStatus,
    disabled_reasons,
)
from realm.tui.away_summary import Mark, SeenStore, summarise
from realm.tui.oracles import OracleView
from realm.tui.screens.battle import eta, metrics_line
from realm.tui.screens.help import help_rows
from realm.tui.screens.oracle import oracle_model
from realm.tui.screens.vault import vault_model
from realm.tui.screens.watchtower import watchtower_model
from realm.tui.view import RealmView


def test_narration_speaks_of_notable_events_only():
    assert narrate(demo.step(1000)) is None  # steps are too frequent for the log
    failed = QuestFinished(result=QuestResult(name="q", outcome="failed", reason="bad line 3"))
    assert narrate(failed) == ("warning", "Defeat: q (bad line 3)")
    assert narrate(BattleChanged(status="paused")) == ("info", "battle paused")
    assert narrate(failed) == narrate(failed)  # pure


def test_the_reducer_finds_a_level_up_within_one_trainer_s_life():
    state = apply(RealmState(), demo.session(steps=0)[0])
    assert level_up(RealmState(), state) is None  # a trainer starting is where counting starts
    at_99, at_100 = (apply(state, demo.step(n)) for n in (99, 100))
    assert level_up(state, at_99) is None and level_up(at_99, at_100) == 2
    started = demo.session(steps=0)[0]
    later = TrainerStarted(trainer=TrainerInfo(**{**msgspec.structs.asdict(started.trainer), "pid": 7}), step=250)
    assert level_up(at_99, apply(at_99, later)) is None  # a restart at a later step is not a level-up


def test_away_summary_counts_what_the_journal_says():
    entries = (
        JournalEntry(id=1, run="a", seq=5, time=1.0, kind="level", text="DIO reached level 2", step=1000),
        JournalEntry(id=2, run="a", seq=9, time=2.0, kind="quest_done", text="Quest x is won", step=1200),
        JournalEntry(id=3, run="a", seq=12, time=3.0, kind="quest_failed", text="Quest y is lost: bad", step=1200),
        JournalEntry(id=4, run="b", seq=2, time=4.0, kind="trainer", text="DIO awakens", step=1200),
        JournalEntry(id=5, run="b", seq=3, time=5.0, kind="achievement", text="★ Achievement: Centurion", step=1200),
        JournalEntry(id=6, run="b", seq=4, time=6.0, kind="checkpoint", text="saved", step=1200),
    )
    summary = summarise(Journal(entries=entries), Mark(run="a", seq=4, time=0.5, step=900), step_now=1300)
    assert summary.steps == 400
    assert summary.quests_done == 1 and summary.quests_failed == ("Quest y is lost: bad",)
    assert summary.achievements == ("Centurion",) and summary.checkpoints == 1 and summary.restarts == 1
    assert summary.headline().startswith("DIO trained 400 steps, gained 1 level, won 1 quest")


def test_seen_store_round_trips_and_survives_a_bad_file(tmp_path):
    store = SeenStore(tmp_path / "state")
    assert store.get("ipc://x") is None
    store.put("ipc://x", Mark(run="r", seq=7, time=1.5, step=3))
    store.put("ipc://y", Mark(run="s", seq=1, time=2.5))
    assert store.get("ipc://x") == Mark(run="r", seq=7, time=1.5, step=3)
    (tmp_path / "state" / "seen.json").write_text("{not json", encoding="utf-8")
    assert store.get("ipc://x") is None
    store.put("ipc://x", Mark(run="r", seq=8, time=1.5))
    assert store.get("ipc://x").seq == 8


def test_disabled_reasons_follow_connection_readonly_and_status():
    state = RealmState(battle=BattleState(status="training"))
    assert "toggle_pause" not in disabled_reasons(state, True, False, "ipc://t")
    assert disabled_reasons(state, True, True, "ipc://t")["toggle_pause"].startswith("read-only")
    assert "ipc://t" in disabled_reasons(state, False, False, "ipc://t")["toggle_pause"]
    stopped = RealmState(battle=BattleState(status="stopped"))
    assert disabled_reasons(stopped, True, False, "e")["toggle_pause"] == "the trainer is stopped"
    assert disabled_reasons(state, True, False, "e")["promote"] == EMPTY_VAULT
    assert disabled_reasons(state, True, False, "e")["send_chat"] == NO_ORACLE_NODE
    stocked = RealmState(vault=VaultState(checkpoints=(CheckpointInfo(step=5, name="checkpoint-5", time=1.0),)))
    assert "promote" not in disabled_reasons(stocked, True, False, "e")
    assert disabled_reasons(stocked, True, True, "e")["promote"].startswith("read-only")
    assert disabled_reasons(stocked, False, False, "e")["add_quest"].startswith("trainer not reachable")
    view = RealmView(state, True, "e", disabled=tuple(disabled_reasons(state, True, False, "e").items()))
    rows = help_rows(view)
    assert len(rows) == len(HELP_ACTIONS)
    assert {key for _, key, _, _ in rows} >= {"1", "9", "space", "P", "/", "?", "q", "esc"}


def oracle_state():
    from realm.state import apply

    state = RealmState()
    for event in demo.oracle_session():
        state = apply(state, event)
    return state.oracle


def test_chat_reasons_follow_the_oracle_not_read_only():
    state = RealmState()
    up = OracleView("local", "ipc://o", connected=True, state=oracle_state())
    down = OracleView("local", "ipc://o", connected=False)
    idle = disabled_reasons(state, False, True, "e", ChatStatus(up))
    assert "send_chat" not in idle  # no trainer and a read-only session: chat still goes to the oracle
    assert idle["stop_generation"] == NOT_GENERATING and idle["copy_answer"] == NO_ANSWER
    talking = disabled_reasons(state, True, False, "e", ChatStatus(up, generating=True, answered=True))
    assert talking["send_chat"] == STILL_ANSWERING
    assert "stop_generation" not in talking and "copy_answer" not in talking
    unreachable = disabled_reasons(state, True, False, "e", ChatStatus(down))["send_chat"]
    assert "ipc://o" in unreachable and "realm oracle" in unreachable
    refused = OracleView("gpu-box", "tcp://10.0.0.2:5557", connected=False, problem="no client key")
    assert (
        disabled_reasons(state, True, False, "e", ChatStatus(refused))["send_chat"] == "oracle gpu-box: no client key"
    )


def test_oracle_and_watchtower_models_read_the_oracle_s_telemetry():
    up = OracleView("local", "ipc://o", connected=True, state=oracle_state(), heard_s_ago=0.4)
    view = RealmView(RealmState(), True, "e", oracles=(up, OracleView("spare", "tcp://h:1", connected=False)))
    model = oracle_model(view)
    assert model.missing is None and model.nodes == (("local", 0), ("spare", 1))
    status = model.status.plain
    assert "checkpoint-200-20260101-0002" in status and "118 tok/s" in status and "no NVIDIA GPU" in status
    rows = dict(watchtower_model(view).oracles[:5])
    assert rows["node"] == "local · cpu · heard 0s ago" and rows["queue"] == "1 answering · 0 waiting"
    assert "waiting at tcp://h:1" in dict(watchtower_model(view).oracles[5:])["node"]
    picked = RealmView(RealmState(), True, "e", oracles=view.oracles, oracle_index=1)
    assert "tcp://h:1" in oracle_model(picked).missing
    assert "realm oracle" in oracle_model(RealmView(RealmState(), True, "e")).missing


def test_the_watchtower_says_why_nothing_is_served_and_calls_only_a_failed_load_a_failure():
    from realm.protocol import OracleLoadFailed
    from realm.state import apply

    waiting = apply(RealmState(), OracleLoadFailed(ref="latest", reason="nothing to serve yet: the vault is empty"))
    view = RealmView(RealmState(), True, "e", oracles=(OracleView("local", "ipc://o", True, state=waiting.oracle),))
    assert dict(watchtower_model(view).oracles)["serving"] == "nothing to serve yet: the vault is empty"
    served = apply(RealmState(oracle=oracle_state()), OracleLoadFailed(ref="9", reason="no checkpoint 9"))
    view = RealmView(RealmState(), True, "e", oracles=(OracleView("local", "ipc://o", True, state=served.oracle),))
    assert dict(watchtower_model(view).oracles)["serving"].endswith(" (failed: no checkpoint 9)")
    from realm.protocol import GpuInfo, OracleState
    from realm.tui.screens.oracle import gpu_text

    gpu = GpuInfo(index=0, name="RTX 3090", utilization=87.0, memory_used_mb=6144, memory_total_mb=24576)
    assert gpu_text(OracleState(gpus=(gpu, gpu))) == "GPU 87% 6.0/24.0 GiB +1"


def test_quest_val_belongs_to_the_quest_being_fought():
    from realm.protocol import QuestStarted, ValMetrics

    state = apply(RealmState(), QuestStarted(quest=QuestInfo(name="a.jsonl"), total_steps=10))
    state = apply(state, ValMetrics(step=5, val_loss=0.125))
    assert "quest val 0.1250" in metrics_line(state.battle, state.hero.val_loss).plain
    state = apply(state, QuestStarted(quest=QuestInfo(name="b.jsonl"), total_steps=10))
    assert state.battle.val_losses  # the chart keeps the first quest's point
    assert f"quest val {fmt.MISSING}" in metrics_line(state.battle, state.hero.val_loss).plain


def test_eta_and_durations():
    battle = BattleState(quest=QuestInfo(name="q"), quest_step=100, quest_total=400)
    assert eta(battle, 2.0) == "2m30s"
    assert eta(battle, None) == fmt.MISSING
    assert fmt.duration(45) == "45s" and fmt.duration(3 * 3600 + 120) == "3h02m"


def test_vault_model_sorts_and_filters():
    ckpts = tuple(
        CheckpointInfo(
            step=s,
            name=f"checkpoint-{s}",
            time=float(s),
            val_loss=0.5,
            quest=q,
            suite=SuiteScore(version="v1", loss=v, accuracy=0.25) if v else None,
        )
        for s, v, q in ((10, 2.0, "a"), (20, None, "b"), (30, 1.0, "a"))
    )
    view = RealmView(RealmState(vault=VaultState(checkpoints=ckpts, champion=30)), True, "e")
    assert [c.step for c in vault_model(view).rows] == [30, 20, 10]
    assert [c.step for c in vault_model(view, sort="suite").rows] == [30, 10, 20]  # unscored last
    assert [c.step for c in vault_model(view, filter_text=" B ").rows] == [20]
    model = vault_model(view)
    assert "champion 30: suite loss 1.000 · acc 25%" in model.stats
    assert [model.marks.of(c.step) for c in model.rows] == ["★•", "", ""]


def test_the_oracle_suggests_real_items_of_each_skill_in_the_mix():
    from realm.protocol import SkillEvalItem, SkillsState, SkillState
    from realm.state import RealmState
    from realm.tui.screens.oracle import suggestions_text
    from realm.tui.suggestions import suggested_prompts

    def item(prompt: str) -> SkillEvalItem:
        return SkillEvalItem(prompt=prompt, expected="x", response="y", correct=False)

    assert suggested_prompts(RealmState()) == ()  # nothing evaluated yet: nothing to suggest
    bin_ = SkillState(
        id="bin", short_name="BIN", level=3, last_items=(item("Add in binary:\n ① + ① ="), item("b2"), item("b3"))
    )
    sy = SkillState(id="sy", short_name="SY", level=1, last_items=(item("s1"), item("s2")))
    fresh = SkillState(id="new", level=1)  # in the mix, no round yet
    state = RealmState(skills=SkillsState(active="sy", skills=(bin_, sy, fresh)))
    # the active skill first, then every skill gets a turn before any gets a second
    assert suggested_prompts(state) == (("SY L1", "s1"), ("BIN L3", "Add in binary: ① + ① ="), ("SY L1", "s2"))
    assert suggested_prompts(state, limit=5)[3:] == (("BIN L3", "b2"), ("BIN L3", "b3"))
    text = suggestions_text(suggested_prompts(state), "ascii").plain.splitlines()
    assert text == ["try ctrl+t  SY L1   s1", "            BIN L3  Add in binary: 1 + 1 =", "            SY L1   s2"]


def test_the_skills_screen_names_what_kind_of_quest_dio_trains_on():
    from realm.protocol import BattleState, QuestInfo
    from realm.state import RealmState
    from realm.tui.screens.skills import skills_model

    def training_on(source: str) -> str:
        battle = BattleState(quest=QuestInfo(name="q", source=source))
        return skills_model(RealmView(RealmState(battle=battle), True, "e")).training_on

    assert training_on("idle") == "an idle quest the trainer made (q)"
    assert training_on("correction") == "a correction quest: the items DIO got wrong (q)"
    assert training_on("generated") == "a quest drawn from a skill on request (q)"
    assert training_on("inbox") == "your quest (q)"


def test_sparklines_share_one_scale_and_say_their_steps():
    from realm.protocol import SkillEvalPoint, SkillState
    from realm.tui.screens.skills import SPARK_POINTS, sparkline, trend_text, trends

    assert sparkline((0.0, 0.5, 1.0)) == "▁▅█" and sparkline((1.4, -0.1)) == "█▁"
    points = tuple(SkillEvalPoint(level=2, step=50 * k, accuracy=k / 40) for k in range(1, 31))
    [trend] = trends(SkillState(id="bin", history=points))
    line = trend_text(trend).plain
    first_drawn = 50 * (30 - SPARK_POINTS + 1)
    assert line.startswith("  L2  ") and f"steps {first_drawn:,}–1,500 · {SPARK_POINTS} of 30 evals" in line
    assert " 75%" in line  # the newest round's accuracy
    [one] = trends(SkillState(id="bin", history=points[:1]))
    assert "step 50 · 1 eval" in trend_text(one).plain


def test_the_eval_tables_columns_share_the_width():
    from realm.tui.screens.skills import ITEM_FIXED, item_widths

    assert item_widths(80) == (1, 5, 28, 16, 16)
    assert sum(item_widths(120)) == 120 - ITEM_FIXED + 6 and item_widths(120)[3] > 16


def test_the_mix_line_names_the_shipped_skills_left_out_only_for_the_shipped_folder():
    from realm.protocol import ConfigField, SkillsState, SkillState
    from realm.tui.screens.skills import mix_line

    bin_only = (SkillState(id="bin", short_name="BIN"),)

    def line(folder: str | None) -> str:
        config = () if folder is None else (ConfigField(key="skills.folder", value=folder),)
        state = RealmState(skills=SkillsState(skills=bin_only), config=config)
        return mix_line(RealmView(state, True, "e"), bin_only)

    assert line("null").startswith("In the mix (skills.mix): BIN. Not in the mix, so not trained or shown: sy;")
    assert line("/my/skills") == line(None) == "In the mix (skills.mix): BIN"


def test_marks_say_which_checkpoints_the_trainer_keeps():
    from realm.tui.screens.vault import Marks

    marks = Marks(champion=20, served=((10, "local"), (10, "gpu-box")), latest=30)
    ckpt = lambda step: CheckpointInfo(step=step, name=f"checkpoint-{step}", time=0.0)  # noqa: E731
    assert [marks.of(s) for s in (10, 20, 30, 40)] == ["▶", "★", "•", ""]
    assert marks.nodes_serving(10) == ["local", "gpu-box"]
    assert marks.kept(ckpt(30)) == "checkpoint-30 is the latest checkpoint; the trainer resumes from it"
    assert "is the champion" in marks.kept(ckpt(20)) and "being served" in marks.kept(ckpt(10))
    assert marks.kept(ckpt(40)) is None


def test_a_skill_draws_the_level_before_its_own_its_own_and_the_next():
    from realm.protocol import SkillEvalPoint, SkillState
    from realm.tui.screens.skills import skill_row, skill_row_text

    history = tuple(SkillEvalPoint(level=lvl, step=100 * lvl, accuracy=0.5) for lvl in (1, 2, 3, 4, 5))
    text = skill_row_text(skill_row(SkillState(id="sy", level=4, max_level=50, history=history), 0, "")).plain
    assert [line.split()[0] for line in text.splitlines()[1:4]] == ["L3", "L4", "L5"]
    assert text.splitlines()[-1] == "  + 2 earlier levels not drawn"


def test_the_vault_marks_what_each_followed_oracle_serves():
    from realm.protocol import OracleServing, OracleState
    from realm.tui.oracles import OracleView
    from realm.tui.screens.vault import vault_model

    def serving(step: int) -> OracleState:
        return OracleState(
            serving=OracleServing(step=step, name=f"c-{step}", source="shared", loaded_at=0, load_seconds=0)
        )

    ckpts = tuple(CheckpointInfo(step=s, name=f"c-{s}", time=float(s)) for s in (10, 20, 30))
    oracles = (
        OracleView("local", "ipc://a", True, serving(10)),
        OracleView("gpu-box", "ipc://b", True, serving(20)),
        OracleView("gone", "ipc://c", False, serving(30)),  # not connected: what it served is not known now
    )
    view = RealmView(RealmState(vault=VaultState(checkpoints=ckpts)), True, "e", oracles=oracles)
    model = vault_model(view)
    assert [model.marks.of(c.step) for c in model.rows] == ["•", "▶", "▶"]
    assert model.marks.nodes_serving(20) == ["gpu-box"]


def test_the_eval_table_shows_what_tells_items_apart():
    from realm.tui.screens.skills import prompt_gist

    assert prompt_gist("Syllacrostic: join the tiles.\nTiles: BALL FOOT\n1. (2 syllables) a game") == (
        "Tiles: BALL FOOT 1. (2 syllables) a game"
    )
    assert prompt_gist("3 in binary, 5 bits = (columns)") == "3 in binary, 5 bits = (columns)"


def test_a_wrong_eval_answer_is_shown_from_where_it_leaves_the_expected_one():
    from realm.tui.screens.skills import from_difference

    said, expected = "0*2+1=1\n1*2+0=2\n2*2+1=5\n5*2+1=11\n11", "0*2+1=1\n1*2+0=2\n2*2+1=5\n5*2+0=10\n10"
    assert from_difference(said, expected, 16) == ("…5*2+1=11 11", "…5*2+0=10 10")
    long_word = '{"answers": ["RIVER", "STONE", "CLOUD"]}', '{"answers": ["RIVER", "STONE", "CLOWN"]}'
    assert from_difference(*long_word, 16) == ('…"CLOUD"]}', '…"CLOWN"]}')
    assert from_difference("1*2+0=2 9", "1*2+0=2 8", 16) == ("1*2+0=2 9", "1*2+0=2 8")  # it shows already
    assert from_difference("", "42", 16) == ("", "42")


def test_a_quest_of_several_epochs_says_which_pass_it_is_on():
    from realm.protocol import QuestInfo, QuestStarted, StepMetrics
    from realm.tui.screens.battle import quest_meter
    from realm.tui.screens.quests import board_model

    state = apply(RealmState(), QuestStarted(quest=QuestInfo(name="q.jsonl", epochs=3), total_steps=30))
    metrics = dict(loss=1.0, lr=1e-3, grad_norm=1.0, tokens=10, tokens_per_s=1.0, examples_per_s=1.0, quest_total=30)
    state = apply(state, StepMetrics(step=12, quest_step=12, quest_epoch=2, quest_epochs=3, **metrics))
    assert board_model(RealmView(state, True, "e")).active == "q.jsonl  12/30 steps  epoch 2/3  (inbox)"
    assert quest_meter(state.battle)[2] == " 12/30 ep 2/3"
    one_pass = apply(state, StepMetrics(step=13, quest_step=13, **metrics))
    assert board_model(RealmView(one_pass, True, "e")).active == "q.jsonl  13/30 steps  (inbox)"


def test_a_skill_row_gives_the_pooled_probe_with_its_band():
    from realm.protocol import SkillEvalPoint, SkillState
    from realm.tui.screens.skills import skill_row, skill_row_text

    history = tuple(
        SkillEvalPoint(level=2, step=50 * k, accuracy=0.6, probe=share, probe_items=40)
        for k, share in enumerate((0.5, 0.6, 0.7, 0.8), 1)
    )
    text = skill_row_text(skill_row(SkillState(id="bin", level=2, max_level=30, history=history), 0, "")).plain
    assert "  L2  probe 70% (61-77%, 120 items in 3 rounds)" in text.splitlines()
    unsized = tuple(SkillEvalPoint(level=2, step=50, accuracy=0.6, probe=0.5) for _ in range(3))
    assert "probe" not in skill_row_text(skill_row(SkillState(id="bin", level=2, history=unsized), 0, "")).plain


def test_a_locked_skill_says_what_it_waits_for_until_it_joins():
    from realm.protocol import SkillsLoaded, SkillsState, SkillState, SkillUnlocked
    from realm.tui.screens.skills import skill_row_text, skills_model

    skills = (
        SkillState(id="bin", short_name="BIN", level=1, next_eval_step=50),
        SkillState(id="sy", short_name="SY", level=1, waits_for="bin", waits_level=2),
    )
    state = apply(RealmState(), SkillsLoaded(skills=SkillsState(active="bin", skills=skills)))

    def sy_text(state):
        return skill_row_text(skills_model(RealmView(state, True, "e")).rows[1]).plain

    text = sy_text(state)
    assert "  locked: joins the training when BIN reaches L2 (skills.unlock_level)" in text.splitlines()
    assert "none until it joins" in text and "no eval yet" not in text
    joined = apply(state, SkillUnlocked(skill="sy", after="bin", level=2, step=900))
    assert [(s.waits_for, s.waits_level) for s in joined.skills.skills] == [("", 0), ("", 0)]
    assert "locked" not in sy_text(joined) and "no eval yet" in sy_text(joined)


def test_the_oracle_status_says_idle_with_what_it_served_rather_than_zero_rates():
    from realm.protocol import OracleState
    from realm.tui.screens.oracle import load_text

    assert load_text(OracleState(served=2)) == "idle · 2 served"
    assert load_text(OracleState(tokens_per_s=96.4, active=1, queued=2, served=2)) == "96 tok/s · 1+2 chats"
