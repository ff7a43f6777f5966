"""The pure drawing helpers behind the widgets: chart, bar, portrait, titles, numbers."""

from __future__ import annotations

import pytest

from realm.game.milestones import rank
from realm.tui import format as fmt
from realm.tui.widgets.damage import change_text, loss_change
from realm.tui.widgets.loss_chart import render_chart
from realm.tui.widgets.meter import bar
from realm.tui.widgets.portrait import SPRITES, PortraitError, load_tiers, portrait, tier


def test_chart_fills_its_box_with_axis_labels():
    train = [(step, 4.0 - step / 100) for step in range(1, 301)]
    val = [(50, 3.6), (100, 3.1)]
    lines = render_chart(train, val, width=60, height=10).plain.split("\n")
    assert len(lines) == 10
    assert all(len(line) == 60 for line in lines[:-1])
    top, bottom = (float(line.split("┤")[0]) for line in (lines[0], lines[-2]))
    assert top >= 4.0 - 1 / 100 and bottom <= 1.0  # the axis spans the data
    assert lines[-1].strip().startswith("└1") and lines[-1].rstrip().endswith("300")
    plot = "".join(line[7:] for line in lines[:-1])
    assert any(ord(ch) > 0x2800 for ch in plot), "no dots were drawn"


def test_chart_axis_never_labels_a_negative_loss():
    lines = render_chart([(step, 0.2 - step / 1000) for step in range(1, 201)], [], width=40, height=8).plain
    bottom = float(lines.split("\n")[-2].split("┤")[0])
    assert bottom == 0.0


def test_one_spike_is_clipped_and_marked_so_the_curve_keeps_its_shape():
    train = [(step, 4.0 - step / 100) for step in range(1, 301)]
    train[150] = (151, 14.6)
    lines = render_chart(train, [], width=60, height=10).plain.split("\n")
    top_label = lines[0].split("┤")[0].strip()
    assert top_label.startswith("↑") and float(top_label[1:]) < 6.0
    # the curve still spans the plot: its last steps are drawn near the bottom, not squashed
    assert any(ord(ch) > 0x2800 for ch in lines[-3][7:])
    calm = render_chart(train[:150], [], width=60, height=10).plain.split("\n")
    assert not calm[0].strip().startswith("↑")


def test_chart_copes_with_one_point_and_flat_lines():
    assert len(render_chart([(5, 1.0)], [], width=20, height=4).plain.split("\n")) == 4
    assert len(render_chart([(1, 2.0), (2, 2.0)], [], width=20, height=4).plain.split("\n")) == 4
    assert len(render_chart([(10, 2.0), (3, 1.0)], [], width=20, height=4).plain.split("\n")) == 4


def test_a_damage_number_is_the_loss_change_over_a_ticks_steps():
    assert loss_change(2.0, [1.9, 1.5]) == pytest.approx(-0.5)  # from the last loss before the tick
    assert loss_change(None, [2.0, 2.1, 2.25]) == pytest.approx(0.25)  # else from the tick's first
    assert loss_change(None, [2.0]) is None  # one step and nothing before it: nothing to compare
    assert [change_text(c) for c in (-0.5, 0.0123, -250.0)] == ["-0.500", "+0.012", "-250"]


def test_bar_is_exactly_its_width():
    assert bar(0.0, 10) == " " * 10
    assert bar(1.0, 10) == "█" * 10
    assert bar(0.5, 10) == "█" * 5 + " " * 5
    assert len(bar(0.33, 7)) == 7


def test_portrait_is_half_blocks_and_each_tier_has_its_own_sprite():
    shipped = load_tiers()
    assert [t.name for t in shipped] == ["leather", "iron", "gold", "mythril"]
    drawn = [portrait(i) for i in range(len(shipped))]
    assert all(len(p.plain.split("\n")) == 8 and set(p.plain) <= set("▀▄ \n") for p in drawn)
    assert len({p.markup for p in drawn}) == len(drawn)  # four different pictures
    assert [tier(level) for level in (1, 4, 5, 10, 20, 99)] == [0, 0, 1, 2, 3, 3]
    assert [rank(n) for n in (0, 1, 5, 15, 40)] == [
        ("Novice of Noise", 0), ("Squire of Gradients", 0), ("Knight of the Loss", 1),
        ("Paladin of Perplexity", 2), ("Warlord of Weights", 3),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('"...KKKK..KKKK..."', '"...KKKK..KKKK.."', 1), "tier 'leather', row 16: 16 pixels"),
        (lambda t: t.replace('"...LLLL..LLLL..."', '"...LLLL..LLQL..."', 1), "row 14: no colour for Q"),
        (lambda t: t.replace('armour: "#9aa4ad"', "armour: grey"), "tier 'iron': armour is 'grey'"),
        (lambda t: t.replace("from_level: 5", "from_level: 50"), "tiers must start at level 1 and rise"),
        (lambda t: t.replace("colours:", "colors:"), "not a sprite file"),
    ],
)
def test_a_broken_sprite_file_names_the_tier_and_row(tmp_path, change, message):
    broken = tmp_path / "dio.yaml"
    broken.write_text(change(SPRITES.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(PortraitError, match=message) as info:
        load_tiers(broken)
    assert str(info.value).startswith(str(broken))


def test_number_formats():
    assert fmt.params(412_000) == "0.4M"
    assert fmt.params(596_049_920) == "596M"
    assert fmt.params(1_500_000_000) == "1.5B"
    assert fmt.count(5000) == "5,000"
    assert fmt.loss(None) == fmt.MISSING
    assert fmt.rate(12_345.0) == "12.3k"
