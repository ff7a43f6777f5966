"""``tui.bin_glyphs``: BIN's circled digits drawn as the player chose, on screen only."""

from __future__ import annotations

import pytest

from realm.protocol import SkillEvalItem, SkillEvaluated
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
