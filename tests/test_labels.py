"""Camera labels from several frames' OCR reads (strongroom.media.labels): per-character
consensus, one script per word, vocabulary correction that never invents."""

from __future__ import annotations

import pytest

from strongroom.media.labels import (
    UNCERTAIN_BELOW,
    VOCABULARY,
    LabelRead,
    canonical,
    consensus,
)


def read(*texts: str, conf: float = 90.0) -> LabelRead:
    r = consensus([(t, conf) for t in texts])
    assert r is not None
    return r


def test_look_alikes_a_stray_mark_and_a_letter_for_a_digit_agree_per_character() -> None:
    reads = ["КАМ 13 КОРИДОР 2", "KAM 13 КОРИДОР 2", "КАМ 13 КОРИДОР 2!", "КАМ 1З КОРИДОР 2"]
    r = read(*reads)
    assert r.text == "КАМ 13 КОРИДОР 2"
    assert all("\u0400" <= c <= "\u04ff" for c in r.text if c.isalpha())
    assert r.raw == tuple(reads)  # as OCR gave them, Latin K and "!" included
    assert r.corrected == ()  # look-alikes are normalisation, not correction
    assert r.confidence == pytest.approx(0.9)
    assert not r.uncertain


def test_a_letter_read_for_a_digit_in_a_number_is_the_digit_even_alone() -> None:
    r = read("КАМ 1З КОРИДОР 2")
    assert r.text == "КАМ 13 КОРИДОР 2"


def test_one_read_is_corrected_by_the_vocabulary_but_uncertain() -> None:
    r = read("КАМЕРА 14 КОРИД0Р 2")
    assert r.text == "КАМЕРА 14 КОРИДОР 2"
    assert ("КОРИД0Р", "КОРИДОР") in r.corrected
    assert r.uncertain  # a single read
    assert r.confidence == pytest.approx(0.9)


def test_a_misread_letter_in_a_long_word_is_corrected_from_one_read() -> None:
    r = read("КАМЕРА 14 КОРНДОР 2")
    assert r.text == "КАМЕРА 14 КОРИДОР 2"
    assert r.corrected == (("КОРНДОР", "КОРИДОР"),)


def test_an_english_label_stays_latin() -> None:
    r = read("CAM 07 YARD", "CAM 07 YARD", "CAM 07 YARD")
    assert r.text == "CAM 07 YARD"
    assert all(c.isascii() for c in r.text)
    assert not r.uncertain
    assert r.corrected == ()


def test_a_latin_channel_prefix_stays_latin_beside_a_russian_word() -> None:
    r = read("CH05 ШИЗО", "СН05 ШИЗО", "CH05 ШИЗ0")
    assert r.text == "CH05 ШИЗО"
    assert r.text[:2] == "CH"  # Latin, the vocabulary's CH
    assert read("D3 ПЛАЦ", "DЗ ПЛАЦ", "D3 ПЛAЦ").text == "D3 ПЛАЦ"


def test_script_is_decided_per_word_by_the_majority_of_reads() -> None:
    # Latin P, C in the minority read; Cyrillic И, Ф decide the word for every read
    r = read("КАМ 03 ПФРСИ", "KAM 03 ПФPCИ", "КАМ 03 ПФРСИ")
    assert r.text == "КАМ 03 ПФРСИ"
    assert r.text == canonical("KAM O3 ПФPCИ")


def test_a_run_together_label_stays_as_read() -> None:
    r = read("ПРОГУЛОЧНЫЙДВОР")
    assert r.text == "ПРОГУЛОЧНЫЙДВОР"  # no space invented
    assert r.corrected == ()
    r = read("ПРОГУЛОЧНЫЙДВОР 1", "ПРОГУЛОЧНЫЙДВОР 1", "ПРОГУЛОЧНЫЙДВОР 1")
    assert r.text == "ПРОГУЛОЧНЫЙДВОР 1"


def test_other_reads_restore_a_dropped_space() -> None:
    r = read("ПРОГУЛОЧНЫЙ ДВОР 1", "ПРОГУЛОЧНЫЙДВОР 1", "ПРОГУЛОЧНЫЙ ДВОР 1")
    assert r.text == "ПРОГУЛОЧНЫЙ ДВОР 1"
    # also when the run-together read is the more confident one and comes first
    r2 = consensus([("ПРОГУЛОЧНЫЙДВОР 1", 95), ("ПРОГУЛОЧНЫЙ ДВОР 1", 80),
                    ("ПРОГУЛОЧНЫЙ ДВОР 1", 80)])
    assert r2 is not None and r2.text == "ПРОГУЛОЧНЫЙ ДВОР 1"


def test_a_stray_character_inside_one_read_shifts_nothing() -> None:
    r = read("КАМЕРА 14 КОРИ.ДОР 2", "КАМЕРА 14 КОРИДОР 2", "КАМЕРА 14 КОРИДОР 2")
    assert r.text == "КАМЕРА 14 КОРИДОР 2"
    r = read("КАМЕРА 14 КОРИДОР 2", "КАМЕРА 14 КОРДОР 2", "КАМЕРА 14 КОРИДОР 2")
    assert r.text == "КАМЕРА 14 КОРИДОР 2"


def test_one_cyrillic_letter_misread_in_one_frame_is_outvoted() -> None:
    r = read("ДЕЖУРНАЯ ЧАСТЬ", "ДЕЖУРНАЯ ЧАСТЬ", "ДЕЖУРНАЯ ЧАСТБ")
    assert r.text == "ДЕЖУРНАЯ ЧАСТЬ"
    assert r.confidence == pytest.approx(0.9 - 0.3 / 13, abs=1e-3)


def test_the_majority_digit_wins_across_frames() -> None:
    r = read("КАМ 07 ДВОР", "КАМ 01 ДВОР", "КАМ 07 ДВОР", "КАМ 07 ДВОР", "КАМ 02 ДВОР")
    assert r.text == "КАМ 07 ДВОР"
    assert r.confidence < 0.9
    assert not r.uncertain


def test_votes_are_weighted_by_read_confidence() -> None:
    r = consensus([("CAM 08 GATE", 30), ("CAM 03 GATE", 95), ("CAM 08 GATE", 30)])
    assert r is not None and r.text == "CAM 03 GATE"


def test_labels_in_other_scripts_are_kept_as_read() -> None:
    r = read("კამერა 3 ეზო", "კამერა 3 ეზო")
    assert r.text == "კამერა 3 ეზო"  # not turned into Mtavruli capitals, nor Cyrillic
    assert r.corrected == ()
    r = read("ՏԵՍԱԽՑԻԿ 2", "Տեսախցիկ 2")
    assert r.text == "ՏԵՍԱԽՑԻԿ 2"


def test_low_confidence_reads_are_kept_and_marked_uncertain() -> None:
    r = read("КАМЕРА 7", "КАМЕРА 7", "КАМЕРА 7", conf=40)
    assert r.text == "КАМЕРА 7"
    assert r.confidence == pytest.approx(0.4)
    assert r.confidence < UNCERTAIN_BELOW
    assert r.uncertain


def test_lower_case_and_spacing_are_normalised() -> None:
    assert read("Камера   7", "камера 7").text == "КАМЕРА 7"


def test_garbage_reads_give_nothing() -> None:
    assert consensus([("", 0), ("|", 50), ("—", 20)]) is None
    assert consensus([("|| 1 |", 80), ("[ ]", 90)]) is None
    assert consensus([]) is None


def test_garbage_reads_beside_a_label_do_not_drop_it() -> None:
    r = consensus([("|", 60), ("КАМ 03 ПФРСИ", 85), ("", 0)])
    assert r is not None
    assert r.text == "КАМ 03 ПФРСИ"
    assert r.uncertain  # one usable read
    assert r.raw == ("|", "КАМ 03 ПФРСИ", "")


def test_an_outlier_read_does_not_vote() -> None:
    r = consensus([("КАМ 03 ПФРСИ", 85), ("ЖЖЖ ЩЩЩ ЫЫЫ ЮЮ", 70)])
    assert r is not None and r.text == "КАМ 03 ПФРСИ"
    assert r.uncertain


def test_a_word_far_from_the_vocabulary_is_not_corrected() -> None:
    r = read("БАНЯ 2", "БАНЯ 2")
    assert r.text == "БАНЯ 2"
    assert r.corrected == ()


def test_ambiguous_or_short_words_are_not_corrected() -> None:
    # ППКТ is one edit from both ПКТ and ЕПКТ: left as read
    assert read("ППКТ 3").text == "ППКТ 3"
    # two-letter words change only by look-alikes: ИK is ИК, ИЖ stays
    assert read("ИK 5").text == "ИК 5"
    assert read("ИЖ 5").text == "ИЖ 5"
    # words with digits are not spelling-corrected (CH05 stays, not CH)
    assert read("CH05 ДВОР").text == "CH05 ДВОР"
    # a run of one word plus a number does not become two words
    assert read("КАМ07").text == "КАМ07"


def test_a_word_read_with_a_digit_for_a_letter_is_its_vocabulary_word() -> None:
    r = read("ШИЗ0 2")
    assert r.text == "ШИЗО 2"
    assert r.corrected == (("ШИЗ0", "ШИЗО"),)


@pytest.mark.parametrize(("a", "b"), [
    ("KAM 03 ПФРСИ", "КАМ 03 ПФРСИ"),
    ("cam 07 yard", "CAM 07 YARD"),
    ("САМ 07 YARD", "CAM 07 YARD"),  # Cyrillic С, А, М
    ("[КАМЕРА 14 KOРИДOР 2]", "КАМЕРА 14 КОРИДОР 2"),
    ("EXIT", "ЕХIТ"),
])
def test_canonical_folds_look_alikes_to_one_form(a: str, b: str) -> None:
    assert canonical(a) == canonical(b)
    assert canonical(canonical(a)) == canonical(a)


def test_canonical_keeps_what_it_cannot_fold() -> None:
    assert canonical("  ") == ""
    assert canonical("БАНЯ 2") == "БАНЯ 2"
    assert canonical("CAM 07 YARD") == "CAM 07 YARD"
    assert canonical("КОРНДОР") == "КОРНДОР"  # no vocabulary correction in canonical


@pytest.mark.parametrize("reads", [
    ["КАМ 13 КОРИДОР 2", "KAM 13 КОРИДОР 2", "КАМ 1З КОРИДОР 2"],
    ["CAM 07 YARD"],
    ["CH05 ШИЗО", "СН05 ШИЗ0"],
    ["Камера 7"],
    ["კამერა 3 ეზო"],
])
def test_a_consensus_is_already_canonical(reads: list[str]) -> None:
    r = read(*reads)
    assert canonical(r.text) == r.text


def test_no_two_vocabulary_words_are_look_alikes() -> None:
    assert all(w == w.upper() and " " not in w for w in VOCABULARY)
    assert len({canonical(w) for w in VOCABULARY}) == len(VOCABULARY)


def test_a_read_at_confidence_zero_is_kept_with_confidence_zero() -> None:
    r = consensus([("ПЛАЦ", 0)])
    assert r is not None
    assert (r.text, r.confidence, r.uncertain) == ("ПЛАЦ", 0.0, True)
