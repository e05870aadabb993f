"""`WWW-Authenticate` challenges (RFC 7235): parsed in one pass, Bearer with a realm preferred."""

import pytest

from ociwrap.upstream.challenge import Challenge, choose, parse_challenges

TOKEN_CHARS = "!#$%&'*+.^_`|~0123456789ABCXYZabcxyz-"


def test_challenges_are_parsed_one_by_one():
    value = 'Basic realm="x, y", Bearer realm="https://a/token",service="s",scope="repo:a:pull"'
    assert parse_challenges(value) == [
        Challenge("basic", {"realm": "x, y"}),
        Challenge("bearer", {"realm": "https://a/token", "service": "s", "scope": "repo:a:pull"}),
    ]


def test_schemes_and_parameter_names_are_lower_case_values_are_kept():
    assert parse_challenges('BEARER Realm="https://A/Token",SERVICE=Reg') == [
        Challenge("bearer", {"realm": "https://A/Token", "service": "Reg"})
    ]


def test_every_token_character_is_part_of_a_name():
    assert parse_challenges(f"{TOKEN_CHARS} {TOKEN_CHARS}=v") == [
        Challenge(TOKEN_CHARS.lower(), {TOKEN_CHARS.lower(): "v"})
    ]


@pytest.mark.parametrize(
    "value",
    [
        'Bearer realm="r",service="s"',
        'Bearer realm = "r" , service\t=\t"s"',
        'Bearer realm ="r",service= "s"',
        '  , Bearer realm="r",\t\n service="s" ,',
        "Bearer realm=r service=s",
        "Bearer realm=r,service=s",
    ],
)
def test_blanks_commas_and_unquoted_values(value):
    assert parse_challenges(value) == [Challenge("bearer", {"realm": "r", "service": "s"})]


@pytest.mark.parametrize(
    ("value", "params"),
    [
        ('Bearer realm="a\\"b"', {"realm": 'a"b'}),
        ('Bearer realm="a\\" b"', {"realm": 'a" b'}),
        ('Bearer realm="a\\\\b"', {"realm": "a\\b"}),
        ('Bearer realm="a\\b"', {"realm": "ab"}),
        ('Bearer realm="",service="s"', {"realm": "", "service": "s"}),
        ('Bearer realm=,service="s"', {"realm": "", "service": "s"}),
        ('Bearer realm="a,b c=d"', {"realm": "a,b c=d"}),
        ('Bearer realm="first", realm="second"', {"realm": "first"}),
    ],
)
def test_parameter_values(value, params):
    assert parse_challenges(value) == [Challenge("bearer", params)]


def test_a_quoted_value_ends_at_its_closing_quote():
    assert parse_challenges('Bearer a=""b') == [Challenge("bearer", {"a": ""}), Challenge("b")]


@pytest.mark.parametrize(
    ("value", "challenges"),
    [
        ("", []),
        (" ,, ", []),
        ('realm="x"', [Challenge("realm")]),
        ("Basic", [Challenge("basic")]),
        ("Negotiate abc", [Challenge("negotiate"), Challenge("abc")]),
        (
            'Bearer realm="a\\"b" ,, garbage " unterminated',
            [
                Challenge("bearer", {"realm": 'a"b'}),
                Challenge("garbage"),
            ],
        ),
        ('Basic realm="r" (Bearer realm="x")', [Challenge("basic", {"realm": "r"})]),
    ],
)
def test_unparseable_rest_is_ignored(value, challenges):
    assert parse_challenges(value) == challenges


# -- which challenge to answer -------------------------------------------------------------


def test_bearer_with_a_realm_is_preferred_across_header_lines():
    chosen = choose(['Basic realm="registry"', 'Bearer realm="https://auth/token"'])
    assert chosen == Challenge("bearer", {"realm": "https://auth/token"})


def test_the_first_bearer_with_a_realm_wins():
    chosen = choose(['Bearer service="x", Bearer realm="one"', 'Bearer realm="two"'])
    assert chosen == Challenge("bearer", {"realm": "one"})


@pytest.mark.parametrize(
    "values",
    [
        ['Basic realm="r"'],
        ['Bearer service="no realm"', 'Basic realm="r"'],
        ['Bearer realm=""', 'Basic realm="r"'],
        ['Digest realm="d", Basic realm="r", Basic realm="later"'],
    ],
)
def test_basic_when_no_bearer_has_a_realm(values):
    assert choose(values) == Challenge("basic", {"realm": "r"})


@pytest.mark.parametrize(
    "values", [[], [""], ['Bearer service="no realm"'], ['Digest realm="d"', "Negotiate"]]
)
def test_nothing_to_answer(values):
    assert choose(values) is None


@pytest.mark.parametrize(
    ("value", "count"),
    [
        ("Bearer " + "a" * 100_000, 2),  # one long name that no `=` follows
        ("Bearer " + "a \t" * 33_334, 33_335),  # names, blanks, and never an `=`
        ('Bearer realm="' + '\\"' * 50_000, 1),  # a quoted string never closed
        ('Bearer realm="' + "x," * 50_000 + "\\", 50_000),
        ("Bearer " + "a=," * 33_334, 1),
        ("Bearer " + 'a= "' * 25_000, 1),
        ("Basic" + " ," * 50_000 + "!", 2),
    ],
)
def test_long_values_built_to_backtrack_are_read_in_linear_time(value, count, bounded):
    challenges = bounded(parse_challenges, value)
    assert (challenges[0].scheme, len(challenges)) == (value.split()[0].lower(), count)
