"""The serving task: prompt parsing and the correct continuation of a progression."""

import pytest

from tugboat_workloads.task import PromptError, decode_tokens, encode_prompt, expected_continuation


def test_encode_and_decode_round_trip():
    assert encode_prompt(" 3 7  11 ") == [3, 7, 11]
    assert decode_tokens([15, 19]) == "15 19"
    assert encode_prompt(decode_tokens([0, 63]), vocab_size=64) == [0, 63]


@pytest.mark.parametrize(
    "text, match",
    [("", "empty"), ("3 x 11", r"word 1 \('x'\)"), ("3 -1", r"word 1 \(-1\)"), ("3 64", "outside")],
)
def test_bad_prompts_name_the_word(text, match):
    with pytest.raises(PromptError, match=match):
        encode_prompt(text, vocab_size=64)


def test_continuation_follows_the_progression_mod_vocab():
    assert expected_continuation([3, 7, 11], 2, 64) == [15, 19]
    assert expected_continuation([60, 62], 3, 64) == [0, 2, 4]
    # stride 62 is "minus two" mod 64
    assert expected_continuation([5, 3, 1], 2, 64) == [63, 61]
    assert expected_continuation([9, 9], 2, 64) == [9, 9]
    assert expected_continuation([3, 7, 11], 0, 64) == []


def test_non_progressions_have_no_expected_continuation():
    assert expected_continuation([3, 7, 12], 2, 64) is None
    assert expected_continuation([3], 2, 64) is None
    assert expected_continuation([], 2, 64) is None


def test_out_of_vocabulary_tokens_are_an_error():
    with pytest.raises(ValueError, match=r"token 1 \(70\)"):
        expected_continuation([3, 70], 2, 64)
    with pytest.raises(ValueError, match="n must be"):
        expected_continuation([3, 7], -1, 64)


def test_numpy_style_integers_are_accepted():
    class IndexLike:
        def __init__(self, value):
            self.value = value

        def __index__(self):
            return self.value

    assert expected_continuation([IndexLike(1), IndexLike(4)], 1, 64) == [7]
