"""``tui.bin_glyphs``: BIN's circled digits drawn as the player chose, on screen only."""

from __future__ import annotations

import pytest

from realm.protocol import SkillEvalItem, SkillEvaluated, SkillsLoaded
from realm.skills.bin import ONE, ZERO
from realm.tui import demo
from realm.tui.app import RealmApp
from realm.tui.format import bin_text

pytestmark = pytest.mark.timeout(60)

CIRCLED_PROMPT = f"Add {ONE}{ZERO}{ONE} and {ONE}{ONE}."
CIRCLED_ANSWER = f"{ONE}{ZERO}{ZERO}{ZERO}"


def test_ascii_draws_circled_digits_as_plain_ones_and_circled_leaves_them():
    assert bin_text(CIRCLED_PROMPT, "ascii") == "Add 101 and 11."
    assert bin_text(CIRCLED_ANSWER, "ascii") == "1000"
    assert bin_text(CIRCLED_PROMPT, "circled") == CIRCLED_PROMPT
    assert bin_text("Convert 5 to binary ②", "ascii") == "Convert 5 to binary ②"  # only BIN's two glyphs


def app_with_a_circled_eval(glyphs: str) -> RealmApp:
    app = RealmApp(
        "ipc:///realm-home/run/trainer-pub", "ipc:///realm-home/run/trainer-ctl",
        follow_bus=False, clock=lambda: demo.T0 + 200, bin_glyphs=glyphs,
    )  # fmt: skip
    item = SkillEvalItem(prompt=CIRCLED_PROMPT, expected=CIRCLED_ANSWER, response=CIRCLED_ANSWER, correct=True)
    evaluated = SkillEvaluated(skill="bin", level=1, step=300, accuracy=1.0, items=(item,), next_eval_step=400)
    demo.fill(app.mirror, [*demo.session(), evaluated])
    return app


@pytest.mark.parametrize(
    ("glyphs", "prompt", "answer"),
    [("ascii", "Add 101 and 11.", "1000"), ("circled", CIRCLED_PROMPT, CIRCLED_ANSWER)],
)
async def test_skills_screen_draws_a_bin_answer_in_the_chosen_glyphs(glyphs, prompt, answer):
    from textual.widgets import DataTable

    app = app_with_a_circled_eval(glyphs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        cells = [getattr(c, "plain", str(c)) for c in app.screen.query_one("#skills-items", DataTable).get_row_at(0)]
        await pilot.press("enter")
        await pilot.pause()
        facts = dict(app.screen.facts)
    assert cells[2:] == [prompt, answer, answer]
    assert (facts["prompt"], facts["DIO said"], facts["expected"]) == (prompt, answer, answer)
    assert app.mirror.state.skills.skills[0].last_items[0].prompt == CIRCLED_PROMPT  # the state keeps DIO's text


@pytest.mark.parametrize("glyphs", ["ascii", "circled"])
def test_doctor_asks_the_player_to_look_at_the_circled_digits(glyphs):
    from realm.config import RealmConfig, TuiConfig
    from realm.doctor import _bin_glyphs, format_table

    table = format_table([_bin_glyphs(RealmConfig(tui=TuiConfig(bin_glyphs=glyphs)))])
    assert f"tui.bin_glyphs: {glyphs}" in table
    assert f"{ZERO} {ONE}" in table
    assert ("set tui.bin_glyphs: ascii" in table) == (glyphs == "circled")
    assert "the browser page (tui --serve) ships a font with them" in table


def test_a_log_line_quoting_a_bin_prompt_follows_the_setting():
    from realm.protocol import LogLine
    from realm.tui.widgets.log_view import log_row

    line = LogLine(time=demo.T0, level="info", text=f"DIO answered {CIRCLED_ANSWER}")
    assert log_row(line, "ascii").plain.endswith("DIO answered 1000")
    assert log_row(line, "circled").plain.endswith(f"DIO answered {CIRCLED_ANSWER}")


def test_a_prompt_typed_from_a_drawn_suggestion_goes_back_in_dio_s_notation():
    from realm.tui.format import bin_typed

    mixed = f"Convert 10 to binary and add {ONE}{ZERO}."  # a decimal 10 beside a binary ①⓪
    assert bin_typed("Add 101 and 11.", CIRCLED_PROMPT, "ascii") == CIRCLED_PROMPT  # sent as shown
    assert bin_typed("Add 111 and 11.", CIRCLED_PROMPT, "ascii") == f"Add {ONE}{ONE}{ONE} and {ONE}{ONE}."
    assert bin_typed("Please add 101 and 11 (show work)", CIRCLED_PROMPT, "ascii") == (
        f"Please add {ONE}{ZERO}{ONE} and {ONE}{ONE} (show work)"
    )
    assert bin_typed("Convert 10 to binary and add 11.", mixed, "ascii") == f"Convert 10 to binary and add {ONE}{ONE}."
    assert bin_typed("What is 10?", "What is 5?", "ascii") == "What is 10?"  # nothing was redrawn
    assert bin_typed(CIRCLED_PROMPT, CIRCLED_PROMPT, "circled") == CIRCLED_PROMPT


async def test_ctrl_t_draws_the_suggestion_in_the_chosen_glyphs_and_dio_gets_its_notation(
    tmp_path, endpoints, trainer, oracle_factory
):
    from textual.widgets import Input

    from realm.tui.oracles import OracleNode
    from realm.tui.widgets.chat_log import ChatMessage

    from .conftest import text_of, wait_for
    from .test_live_oracle import Stream, serving_step_5

    oracle = serving_step_5(tmp_path, oracle_factory)
    node = OracleNode("local", oracle.pub, oracle.control)
    app = RealmApp(endpoints.pub, endpoints.control, oracles=[node], chat_max_new_tokens=4, bin_glyphs="ascii")
    item = SkillEvalItem(prompt=CIRCLED_PROMPT, expected=CIRCLED_ANSWER, response=CIRCLED_ANSWER, correct=True)
    stream = Stream()
    async with app.run_test(size=(80, 24), message_hook=stream) as pilot:
        trainer.start()
        trainer.publisher.emit(SkillsLoaded(skills=demo.SKILLS))  # BIN in the mix
        trainer.publisher.emit(SkillEvaluated(skill="bin", level=1, step=300, accuracy=1.0, items=(item,)))
        await pilot.press("6")
        await wait_for(pilot, lambda: app.why_disabled("send_chat") is None, timeout=30, what="the oracle's mirror")
        await wait_for(pilot, lambda: app.screen._suggestions, what="the suggestion")
        await pilot.press("ctrl+t")
        box = app.screen.query_one("#oracle-input", Input)
        assert box.value == "Add 101 and 11."  # drawn as the setting says
        await pilot.press("enter")
        await wait_for(pilot, lambda: stream.finished, timeout=60, what="the answer")
        assert stream.finished[0].end is not None
        assert app.screen.chat.history[0] == {"role": "user", "content": CIRCLED_PROMPT}  # what DIO trained on
        assert text_of(app.screen.query(ChatMessage).first()) == "you: Add 101 and 11."
