from hypothesis import given, settings
from hypothesis import strategies as st

from tui.text import ThinkSplitter, inert, split_think


def test_inert_replaces_control_characters_with_visible_symbols():
    hostile = "a\x1b[2Jb\x07c\x08d\re\x9bf\x7fg\ttab\nline"
    shown = inert(hostile)
    assert shown == "a␛[2Jb␇c␈d␍e\\x9bf␡g\ttab\nline"


@given(st.text())
def test_inert_output_has_no_control_characters(text):
    shown = inert(text)
    assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in shown)


def test_split_think_whole_text():
    assert split_think("<think>hmm, 2+2</think>It is 4.") == ("hmm, 2+2", "It is 4.")
    assert split_think("no reasoning") == ("", "no reasoning")


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40))
def test_think_splitter_gives_the_same_result_however_the_stream_is_cut(cuts):
    text = "<think>step one < two</think>The answer </thin is <b>4</b>."
    splitter, pieces, start = ThinkSplitter(), [], 0
    for size in cuts:
        pieces += splitter.feed(text[start : start + size])
        start += size
    pieces += splitter.feed(text[start:]) + splitter.flush()
    think = "".join(p.text for p in pieces if p.kind == "think")
    answer = "".join(p.text for p in pieces if p.kind == "answer")
    assert (think, answer) == ("step one < two", "The answer </thin is <b>4</b>.")
