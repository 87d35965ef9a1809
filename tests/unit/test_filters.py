"""--filter and --confidence over bounty metadata, with symbol and word operators."""

import pytest

from polyswarmclient.errors import ConfigError
from polyswarmclient.services.microengine.filters import (
    BountyFilter,
    Filter,
    artifact_metadata,
    parse_confidence,
    parse_filters,
)

TEXT = {"mimetype": "text/plain", "filesize": 120, "filename": "readme.txt"}
EXE = {"mimetype": "application/x-dosexec", "filesize": "40000", "filename": "setup.exe"}


@pytest.mark.parametrize(("symbol", "word"), [("<", "lt"), ("<=", "lte"), ("==", "eq"), (">=", "gte"), (">", "gt")])
def test_symbols_and_words_are_the_same_operator(symbol, word):
    """`--filter accept size gt 100` works like `... > 100` (polyswarm-client advertised, refused words)."""
    assert Filter.parse("filesize", symbol, "120").op == Filter.parse("filesize", word.upper(), "120").op


def test_numeric_comparisons_cast_both_sides():
    """Numeric operators compare as numbers, even when the metadata holds a numeric string."""
    assert Filter.parse("filesize", ">", "1000").matches(EXE)
    assert not Filter.parse("filesize", ">", "1000").matches(TEXT)
    assert Filter.parse("filesize", "lte", "120").matches(TEXT)


def test_non_numeric_value_never_matches_numeric_operator():
    """A non-numeric metadata value never matches a numeric comparison."""
    assert not Filter.parse("mimetype", "<", "5").matches(TEXT)


def test_string_operators():
    """==, contains, startswith, endswith and regex compare the value as text."""
    assert Filter.parse("mimetype", "==", "text/plain").matches(TEXT)
    assert Filter.parse("mimetype", "contains", "dosexec").matches(EXE)
    assert Filter.parse("mimetype", "startswith", "text/").matches(TEXT)
    assert Filter.parse("filename", "endswith", ".exe").matches(EXE)
    assert Filter.parse("filename", "regex", r"^set.p\.").matches(EXE)
    assert not Filter.parse("filename", "regex", r"^set.p\.").matches(TEXT)


def test_missing_key_or_non_object_never_matches():
    """Metadata without the key, or that is not an object, matches no filter."""
    f = Filter.parse("mimetype", "==", "text/plain")
    assert not f.matches({}) and not f.matches("text/plain") and not f.matches(None)


def test_accept_and_reject():
    """An artifact is scanned iff an accept filter matches (when any are given) and no reject filter does."""
    only_text = parse_filters([("accept", "mimetype", "startswith", "text/")])
    assert only_text.allows(TEXT) and not only_text.allows(EXE) and not only_text.allows({})
    no_big = parse_filters([("reject", "filesize", ">", "1000")])
    assert no_big.allows(TEXT) and not no_big.allows(EXE) and no_big.allows({})
    assert BountyFilter().allows({})


def test_confidence_favor_penalize_and_clamp():
    """favor x1.2, penalize x0.8, both cancel, and the result never exceeds 1.0."""
    mod = parse_confidence([("favor", "mimetype", "startswith", "text/"), ("penalize", "filesize", ">", "100")])
    assert mod.apply(0.5, {"mimetype": "text/x"}) == pytest.approx(0.6)
    assert mod.apply(0.5, {"filesize": 500}) == pytest.approx(0.4)
    assert mod.apply(0.5, TEXT) == pytest.approx(0.5)
    assert mod.apply(0.95, {"mimetype": "text/x"}) == 1.0


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (("accept", "k", "~=", "v"), "unknown filter operator"),
        (("keep", "k", "==", "v"), "accept or reject"),
        (("accept", "k", "regex", "("), "bad regular expression"),
        (("accept", "k", ">", "big"), "not one"),
    ],
)
def test_bad_rules_are_config_errors(rule, message):
    """Mistyped filters fail at start-up with a message naming the problem (exit 2), not mid-run."""
    with pytest.raises(ConfigError, match=message):
        parse_filters([rule])


def test_artifact_metadata_pads_and_tolerates_garbage():
    """Bounty metadata becomes one object per artifact; missing or invalid entries become {}."""
    assert artifact_metadata([TEXT], 2) == [TEXT, {}]
    assert artifact_metadata("QmNotJson", 1) == [{}]
    assert artifact_metadata(None, 1) == [{}]
    assert artifact_metadata('[{"a": 1}, 5]', 2) == [{"a": 1}, {}]
    assert artifact_metadata(TEXT, 1) == [TEXT]
