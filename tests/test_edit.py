"""The topmost-clip rule shared by the host bridges and the Blender add-on."""

from fractions import Fraction as F

from editor_plugin.edit import Layered, visible


def test_top_layer_wins_and_the_lower_clip_resumes_with_its_source_trimmed():
    base = Layered(0, F(0), F(10), F(100), "base")
    insert = Layered(1, F(3), F(5), F(20), "insert")
    shown = visible([base, insert], F(1), F(8))
    assert [(p.item, p.record_start, p.record_end, p.source_start) for p in shown] == [
        ("base", F(1), F(3), F(101)), ("insert", F(3), F(5), F(20)), ("base", F(5), F(8), F(105))]


def test_gaps_are_left_out_and_a_clip_split_only_by_lower_cuts_stays_whole():
    top = Layered(2, F(0), F(4), F(0), "top")
    lower_a, lower_b = Layered(0, F(0), F(2), F(0), "a"), Layered(0, F(2), F(3), F(0), "b")
    later = Layered(0, F(6), F(7), F(1, 3), "later")
    shown = visible([lower_a, lower_b, top, later], F(0), F(10))
    assert [(p.item, p.record_start, p.record_end) for p in shown] == [("top", F(0), F(4)), ("later", F(6), F(7))]
    assert visible([later], F(0), F(5)) == []
