"""k-of-n unsealing with SLIP-39 shares: any k shares recover the secret, fewer do not, every bad
share is named by its position, and keys-shares.age opens without Strongroom (`shamir recover`,
then `age -d` with the hex secret)."""

from __future__ import annotations

import dataclasses
import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest
from shamir_mnemonic import Share

from strongroom.errors import NotEnoughShares, StrongroomError, WrongShare
from strongroom.vault import passphrase, shares
from strongroom.vault.shares import Scheme, ShareSet, Split

BUNDLE = b'{"format": "strongroom-keys/1", "not": "real keys"}\n'


@pytest.fixture(scope="module")
def three_of_five() -> Split:
    return shares.split(Scheme(3, 5))


@pytest.fixture(scope="module")
def other_set() -> Split:
    return shares.split(Scheme(3, 5))


@pytest.fixture(scope="module")
def sealed(three_of_five: Split) -> bytes:
    return shares.seal(BUNDLE, three_of_five.secret)


def _altered(mnemonic: str) -> str:
    """The same member of the same set with a different value: a valid share (its checksum
    recomputed) that no split produced."""
    share = Share.from_mnemonic(mnemonic)
    value = bytes([share.value[0] ^ 0x01]) + share.value[1:]
    return dataclasses.replace(share, value=value).mnemonic()


def _swap_word(mnemonic: str, position: int, word: str) -> str:
    words = mnemonic.split()
    words[position - 1] = word
    return " ".join(words)


# --- split and combine -----------------------------------------------------------------------

def test_any_k_of_n_shares_recover_the_secret(three_of_five: Split) -> None:
    subsets = list(itertools.combinations(three_of_five.mnemonics, 3))
    assert len(subsets) == 10
    for subset in subsets:
        assert shares.combine(subset) == three_of_five.secret
    assert shares.combine(three_of_five.mnemonics[::-1]) == three_of_five.secret
    assert shares.combine(three_of_five.mnemonics,
                          expected=three_of_five.share_set) == three_of_five.secret


def test_shares_are_plain_slip39_of_one_set(three_of_five: Split) -> None:
    assert len(three_of_five.mnemonics) == 5 and len(three_of_five.secret) == 32
    decoded = [Share.from_mnemonic(m) for m in three_of_five.mnemonics]
    assert {s.identifier for s in decoded} == {three_of_five.identifier}
    assert all(len(m.split()) == 33 for m in three_of_five.mnemonics)
    # readable by SLIP-39 tools older than the extendable flag (2024)
    assert not any(s.extendable for s in decoded)
    assert three_of_five.share_set == ShareSet(three_of_five.identifier, 3, 5)
    assert shares.split(Scheme(3, 5)).secret != three_of_five.secret


def test_a_split_never_shows_its_secret_or_shares_in_repr(three_of_five: Split) -> None:
    shown = repr(three_of_five)
    assert three_of_five.secret.hex() not in shown and str(three_of_five.secret) not in shown
    assert not any(m.split()[5] in shown for m in three_of_five.mnemonics)
    assert str(three_of_five.identifier) in shown


def test_one_of_one_is_a_single_paper_secret() -> None:
    single = shares.split(Scheme(1, 1))
    assert shares.combine(single.mnemonics) == single.secret


def test_k_minus_one_shares_fail(three_of_five: Split) -> None:
    for pair in itertools.combinations(three_of_five.mnemonics, 2):
        with pytest.raises(NotEnoughShares, match=r"^2 shares given, 3 needed$"):
            shares.combine(pair)
    with pytest.raises(NotEnoughShares, match=r"^1 share given, 3 needed$"):
        shares.combine(three_of_five.mnemonics[:1])
    with pytest.raises(NotEnoughShares, match="no shares given"):
        shares.combine(["", "  \n"])


def test_blank_entries_whitespace_and_case_are_ignored(three_of_five: Split) -> None:
    m = three_of_five.mnemonics
    given = ["", f"  {m[0].upper()}  ", "\t", "  ".join(m[2].split()) + "\r\n", m[4].title()]
    assert shares.combine(given) == three_of_five.secret


def test_a_wrong_share_is_named_with_its_unknown_word(three_of_five: Split) -> None:
    m = three_of_five.mnemonics
    bad = _swap_word(m[1], 7, "Xyzzy")
    with pytest.raises(WrongShare, match=r"^share 2: word 7 is not a SLIP-39 word") as caught:
        shares.combine([m[0], bad, m[2]])
    assert "xyzzy" not in str(caught.value).lower()  # it could be a passphrase given by mistake


def test_a_mistyped_but_real_word_fails_the_checksum_and_is_named(three_of_five: Split) -> None:
    m = three_of_five.mnemonics
    words = m[2].split()
    other = "academic" if words[10] != "academic" else "acid"
    with pytest.raises(WrongShare, match=r"^share 3 is mistyped or damaged \(checksum\)$"):
        shares.combine([m[0], m[1], _swap_word(m[2], 11, other)])


def test_a_missing_word_is_named(three_of_five: Split) -> None:
    m = three_of_five.mnemonics
    short = " ".join(m[0].split()[:-1])
    with pytest.raises(WrongShare, match=r"^share 1 has 32 words, a share has 33"):
        shares.combine([short, m[1], m[2]])


def test_a_share_of_another_set_is_named(three_of_five: Split, other_set: Split) -> None:
    m, o = three_of_five.mnemonics, other_set.mnemonics
    with pytest.raises(WrongShare, match=r"^share 3 belongs to another share set \(another "
                                         r"vault's, or one replaced by rekey\)$"):
        shares.combine([m[0], m[1], o[2]])
    # the odd one out is the one the others outvote, even when it comes first
    with pytest.raises(WrongShare, match=r"^share 1 belongs to another share set"):
        shares.combine([o[0], m[1], m[2], m[3]])


def test_shares_of_a_replaced_set_are_named_against_the_recorded_set(
        three_of_five: Split, other_set: Split) -> None:
    # all three agree among themselves; only the vault's record tells they are not its own
    assert shares.combine(other_set.mnemonics[:3]) == other_set.secret
    with pytest.raises(WrongShare, match=r"^share 1 belongs to another share set"):
        shares.combine(other_set.mnemonics[:3], expected=three_of_five.share_set)
    m = three_of_five.mnemonics
    with pytest.raises(WrongShare, match=r"^share 2 belongs to another share set"):
        shares.combine([m[0], other_set.mnemonics[1], m[2]], expected=three_of_five.share_set)
    beyond = dataclasses.replace(Share.from_mnemonic(m[0]), index=7).mnemonic()
    with pytest.raises(WrongShare, match=r"^share 3 is member 8 of a set of 5: it is altered$"):
        shares.combine([m[0], m[1], beyond], expected=three_of_five.share_set)
    recorded_2_of_5 = dataclasses.replace(three_of_five.share_set, threshold=2)
    with pytest.raises(WrongShare, match=r"^share 1 belongs to another share set"):
        shares.combine(m[:3], expected=recorded_2_of_5)


def test_a_repeated_share_is_named(three_of_five: Split) -> None:
    m = three_of_five.mnemonics
    with pytest.raises(WrongShare, match=r"^share 4 repeats share 1$"):
        shares.combine([m[0], m[1], m[2], "  " + m[0].upper()])
    # blank entries do not count as shares
    with pytest.raises(WrongShare, match=r"^share 3 repeats share 2$"):
        shares.combine([m[0], "", m[1], m[1]])


def test_an_altered_share_of_the_same_set_fails_the_digest(three_of_five: Split) -> None:
    m = three_of_five.mnemonics
    altered = _altered(m[1])
    Share.from_mnemonic(altered)  # a valid share: only the digest can tell
    with pytest.raises(WrongShare, match=r"^the shares do not fit together: one of them is "
                                         r"wrong \(a share of the same set, altered\)$"):
        shares.combine([m[0], altered, m[2]])


def test_with_more_than_k_shares_the_altered_one_is_named(three_of_five: Split) -> None:
    m = three_of_five.mnemonics
    with pytest.raises(WrongShare, match=r"^share 2 does not fit with shares 1, 3, 4: it is "
                                         r"altered \(a share of the same set, changed\)$"):
        shares.combine([m[0], _altered(m[1]), m[2], m[3]])
    with pytest.raises(WrongShare, match=r"^share 5 does not fit with shares 1, 2, 3"):
        shares.combine([*m[:4], _altered(m[4])])


def test_the_same_member_twice_with_different_values_is_named(three_of_five: Split) -> None:
    m = three_of_five.mnemonics
    with pytest.raises(WrongShare, match=r"^shares 1 and 4 are the same member of the share "
                                         r"set but differ: one of them is altered$"):
        shares.combine([m[0], m[1], m[2], _altered(m[0])])


def test_among_many_shares_an_early_altered_one_is_named_quickly() -> None:
    split = shares.split(Scheme(8, 16))
    given = [_altered(split.mnemonics[0]), *split.mnemonics[1:]]
    with pytest.raises(WrongShare, match=r"^share 1 does not fit with shares 2, 3, 4, 5, 6, 7, "
                                         r"8, 9: it is altered"):
        shares.combine(given)
    given[5] = _altered(given[5])
    with pytest.raises(WrongShare, match=r"^shares 1, 6 do not fit with shares 2, 3, 4, 5, 7, "
                                         r"8, 9, 10: they are altered"):
        shares.combine(given)


# --- schemes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["3-of-5", "3of5", "3/5", " 3 of 5 ", "3-OF-5", "3 / 5"])
def test_a_scheme_is_written_many_ways(text: str) -> None:
    scheme = Scheme.parse(text)
    assert scheme == Scheme(3, 5) and str(scheme) == "3-of-5"


@pytest.mark.parametrize(("text", "why"), [
    ("three of five", "is not a share scheme: write it like 3-of-5"),
    ("3-5", "is not a share scheme"),
    ("", "is not a share scheme"),
    ("0-of-5", "0-of-5: the threshold must be at least 1"),
    ("3-of-17", "3-of-17: SLIP-39 allows at most 16 shares"),
    ("4-of-3", "4-of-3 cannot be met: the threshold exceeds the number of shares"),
    ("1-of-3", "1-of-3 would be 3 copies of one secret"),
    ("2-of-0", "2-of-0 cannot be met"),
])
def test_a_bad_scheme_is_refused_with_its_reason(text: str, why: str) -> None:
    with pytest.raises(StrongroomError, match=re.escape(why)):
        Scheme.parse(text)


@pytest.mark.parametrize("scheme", [Scheme(1, 1), Scheme(2, 2), Scheme(16, 16), Scheme(2, 16)])
def test_every_allowed_scheme_splits_and_recovers(scheme: Scheme) -> None:
    split = shares.split(scheme)
    assert len(split.mnemonics) == scheme.count
    assert shares.combine(split.mnemonics[-scheme.threshold:]) == split.secret


# --- sealing with the age CLI ----------------------------------------------------------------

def test_sealed_bundle_opens_with_the_recovered_secret(three_of_five: Split, sealed: bytes
                                                       ) -> None:
    assert sealed.startswith(b"age-encryption.org/v1\n-> scrypt ")
    secret = shares.combine(three_of_five.mnemonics[2:])
    assert shares.unseal(sealed, secret) == BUNDLE


def test_shares_of_another_set_do_not_open_the_file(other_set: Split, sealed: bytes) -> None:
    with pytest.raises(WrongShare, match=r"^these shares do not open keys-shares\.age"):
        shares.unseal(sealed, shares.combine(other_set.mnemonics[:3]))


def test_a_secret_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(StrongroomError, match="32 bytes, not 16"):
        shares.seal(BUNDLE, bytes(16))


def test_keys_shares_age_opens_without_strongroom(three_of_five: Split, sealed: bytes,
                                                  tmp_path: Path) -> None:
    """The documented disaster path: the shamir-mnemonic CLI's `shamir recover` prints the hex
    secret; typed at `age -d`'s passphrase prompt, it opens the file."""
    typed = "\n".join(three_of_five.mnemonics[1:4]) + "\n"
    done = subprocess.run([sys.executable, "-m", "shamir_mnemonic.cli", "recover"],
                          input=typed, capture_output=True, text=True, timeout=60, check=True)
    found = re.search(r"Your master secret is: ([0-9a-f]{64})", done.stdout)
    assert found is not None, done.stdout
    assert found[1] == three_of_five.secret.hex()
    keys_file = tmp_path / shares.SHARES_FILE
    keys_file.write_bytes(sealed)
    out = tmp_path / "keys.json"
    # `age -d -o keys.json keys-shares.age`, the hex typed on its terminal (the pty in _age)
    _, err, code = passphrase._age(["--decrypt", "--output", str(out)], keys_file.read_bytes(),
                                   found[1], prompts=1)
    assert code == 0, err
    assert out.read_bytes() == BUNDLE


# --- shares files ----------------------------------------------------------------------------

def test_a_shares_file_skips_comments_blank_lines_and_crlf(three_of_five: Split,
                                                           tmp_path: Path) -> None:
    m = three_of_five.mnemonics
    text = (f"\ufeff# shares of vault X, 3 needed\r\n\r\n{m[0]}\r\n   # Alice's\r\n"
            f"  {m[3]}  \r\n\n{m[4]}")
    path = tmp_path / "shares.txt"
    path.write_bytes(text.encode("utf-8"))
    assert shares.read_shares_file(path) == [m[0], m[3], m[4]]
    assert shares.combine(shares.read_shares_file(path)) == three_of_five.secret


@pytest.mark.parametrize(("content", "why"), [
    (b"", "holds no shares"),
    (b"# only a comment\n\n   \n", "holds no shares"),
    (b"caf\xe9 word\n", r"is not UTF-8 text \(byte 3\)"),
    (b"a" * (64 * 1024 + 1), "is larger than 64 KiB"),
])
def test_a_bad_shares_file_is_refused(content: bytes, why: str, tmp_path: Path) -> None:
    path = tmp_path / "shares.txt"
    path.write_bytes(content)
    with pytest.raises(StrongroomError, match=why):
        shares.read_shares_file(path)


def test_a_shares_file_of_exactly_64_kib_is_read(tmp_path: Path) -> None:
    path = tmp_path / "shares.txt"
    path.write_bytes(b"#" * (64 * 1024 - 5) + b"\nabc\n")
    assert shares.read_shares_file(path) == ["abc"]


def test_a_missing_or_unreadable_shares_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StrongroomError, match="does not exist"):
        shares.read_shares_file(tmp_path / "absent.txt")
    with pytest.raises(StrongroomError, match="cannot read shares file"):
        shares.read_shares_file(tmp_path)

