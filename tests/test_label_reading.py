"""Reading a camera label with both engines (strongroom.media.ocr's label part): tesseract
reads Cyrillic, the recogniser reads Latin and digits better and Cyrillic as Latin
look-alikes; the label is certain only where the two agree."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from strongroom import cctv
from strongroom.media import ocr
from strongroom.media.labels import LabelRead, canonical, consensus, correct_look


def both(tess: list[tuple[str, float]], rapid: list[tuple[str, float]]) -> tuple[str, bool]:
    return ocr._merge_words(consensus(tess), consensus(rapid))


@pytest.mark.parametrize(("read", "word"), [
    ("KAMEPA", "КАМЕРА"), ("KIII", "КПП"), ("KNN", "КПП"), ("XHNA9", "ЖИЛАЯ"),
    ("0TP9A", "ОТРЯД"), ("IEPNMETP", "ПЕРИМЕТР"), ("AEXYPHAA", "ДЕЖУРНАЯ"), ("4ACTB", "ЧАСТЬ"),
    ("IIIPCH", "ПФРСИ"), ("JB0P", "ДВОР"),
])
def test_a_latin_read_of_a_cyrillic_vocabulary_word_is_that_word(read: str, word: str) -> None:
    assert correct_look(read) == word


@pytest.mark.parametrize("read", [
    "V30",  # СИЗО or ШИЗО: as near to both, neither
    "AL", "KT",  # too little left of ПЛАЦ, ПКТ
    "CAM", "YARD", "28", "BANYA",  # Latin words, numbers, words far from all
    "CH31", "D15",  # camera numbers: not СИЗО, not a word
])
def test_a_latin_read_is_no_cyrillic_word_unless_it_is_near_exactly_one(read: str) -> None:
    assert correct_look(read) is None


def test_garbage_from_tesseract_leaves_the_recogniser_s_label_but_uncertain() -> None:
    text, uncertain = both([("arate)", 32), ("arate)", 50), ("arene)", 51), ("АЕТИЕТЯ", 4)],
                           [("KaMepa 31", 98), ("KaMepa 31", 99), ("KaMepa 31", 99)])
    assert text == "КАМЕРА 31"
    assert uncertain  # the number was read by one engine only


def test_the_engines_agreeing_through_look_alikes_make_a_certain_label() -> None:
    text, uncertain = both([("КАМЕРА 11 КПП", 90)] * 3, [("KAMEPA 11 KIII", 90)] * 3)
    assert (text, uncertain) == ("КАМЕРА 11 КПП", False)
    # tesseract's 0 for a camera number's D is a confusion, not a disagreement
    text, uncertain = both([("022 КАРАНТИН", 95)] * 3, [("D22 KAPAHTUH", 88)] * 3)
    assert (text, uncertain) == ("D22 КАРАНТИН", False)


def test_the_recogniser_s_run_together_words_are_parted_at_a_vocabulary_word() -> None:
    text, uncertain = both([("2 FLOOR 3]", 89)] * 3, [("CAM12FL00R3", 99)] * 3)
    assert "FLOOR 3" in text
    assert uncertain  # "2" against "CAM12"
    text, _ = both([("р15 КАМЕРА 1.4", 84), ("pis АМЕР US:", 37)],
                   [("D15KAMEPA 14", 96)] * 3)
    assert text == "D15 КАМЕРА 14"


def test_a_vocabulary_word_is_the_one_of_the_engine_whose_reads_agreed() -> None:
    # tesseract's reads disagree (DE КАМ, D3 КАТ …), the recogniser's do (D3 KNN: КПП)
    text, uncertain = both([("De xan.", 32), ("D3 Kat.", 26), ("оз.", 1), ("De Kain.", 42)],
                           [(" D3 Knn", 85), (" D3 Knn", 84), (" D3 Kn", 91), (" D3 Knn", 86)])
    assert (text, uncertain) == ("D3 КПП", True)


def test_a_channel_number_read_with_letters_for_digits_is_digits() -> None:
    assert canonical("CHO4 ЖИЛАЯ ЗОНА") == "CH04 ЖИЛАЯ ЗОНА"
    assert canonical("СНО1 ИК-10") == "CH01 ИК-10"
    assert canonical("DO3") == "D03"
    assert canonical("ШИЗО1") == "ШИЗО1"  # a word, not a prefix: left as read
    assert canonical("КАМ01") == "КАМ01"


def test_words_are_chosen_part_by_part_and_runs_parted_at_every_number() -> None:
    text, uncertain = both([("228 ИК-10", 41), ("02$ ИК-13", 45), ("928 ИК-13", 63),
                            ("028 MK-19", 57)],
                           [("D28 VK-10", 91), ("D28 WK-10", 93), ("D28 WK-10", 94)])
    assert (text, uncertain) == ("D28 ИК-10", True)
    # tesseract's ТIКТ is П as TI; the recogniser ran CAM, 3 and KT together
    text, _ = both([("CAM 3 ТIКТ", 70)] * 3, [("CAM3KT", 97)] * 3)
    assert text == "CAM 3 ПКТ"


def test_a_number_the_recogniser_read_after_tesseract_s_last_word_is_kept() -> None:
    # tesseract's box was cut short ("КОРИД"); the recogniser ran КОРИДОР into its 2
    text, uncertain = both([("227 КОРИД!", 84)] * 4, [("D27 KOPMIOP2", 86)] * 4)
    assert (text, uncertain) == ("D27 КОРИДОР 2", True)


def test_a_number_from_the_recogniser_s_run_on_does_not_beat_tesseract_s_number() -> None:
    # П read "1I" and run into the number: the 1 is not the number's
    text, _ = both([("КАМ 10 ПЕРИМЕТР", 94)] * 3, [("KAM101IEPHMETP", 90)] * 3)
    assert text == "КАМ 10 ПЕРИМЕТР"
    # but it beats a number tesseract did not read as one
    text, _ = both([("CAM $2 FLOOR 3", 79)] * 3, [("CAM02FLOOR3", 91)] * 3)
    assert text == "CAM 02 FLOOR 3"
    assert ocr._split_runs(["AEX4PHA9", "XHNA9", "KOPMIOP2"]) == (
        ["AEX4PHA9", "XHNA9", "KOPMIOP", "2"], set())


def test_ocr_leaves_at_a_word_s_edge_do_not_hide_the_vocabulary_word() -> None:
    # clip 1 of the v3 corpus: ЖИЛАЯ in 1-bit DejaVuSans-Bold, a ">" before it
    text, _ = both([("СЛУГА 4 AMSA SONS", 21), ("CAM 4KU ASS ЗОНА", 10)],
                   [("CAM 4 >XKN[AA ЗОНА", 65)] * 3)
    assert text == "CAM 4 ЖИЛАЯ ЗОНА"


def test_a_word_neither_engine_spelt_is_not_certain() -> None:
    # clip 75 of the v3 corpus: the Ukrainian ДВІР, tesseract "Двр" (corrected to ДВОР),
    # the recogniser "BIP"; both made ДВОР, neither read it
    text, uncertain = both([("Камера 7 Двр", 90)] * 4, [("KAMEPA 7 BIP", 92)] * 4)
    assert uncertain, text
    # one engine's exact read makes it certain again
    assert both([("Камера 7 Двр", 90)] * 4, [("KAMEPA 7 JBOP", 92)] * 4) == (
        "КАМЕРА 7 ДВОР", False)


def test_a_word_read_in_two_is_one_word_again() -> None:
    # clips 145 and 179 of the v3 corpus (LiberationSerif re-encoded to 352×288)
    assert ocr._finish(["D14", "ПРОГ", "УЛОЧНЫЙ", "ДВОР"]) == "D14 ПРОГУЛОЧНЫЙ ДВОР"
    assert ocr._finish(["КАМ", "03", "ДВОР"]) == "КАМ 03 ДВОР"  # words stay words
    assert ocr._finish(["GATE", "A"]) == "GATE A"


def test_a_camera_number_s_prefix_stays_on_it_in_a_run_and_beats_an_unsure_tesseract() -> None:
    assert ocr._split_runs(["D15KAMEPA14"])[0] == ["D15", "KAMEPA", "14"]
    assert ocr._split_runs(["CH26KIII"])[0] == ["CH26", "KIII"]
    # tesseract unsure of its "P15": the recogniser's D15 (the label stays uncertain)
    text, uncertain = both([("P15 КАМЕРА 1.4", 31), ("PIS КАМЕРА 14", 40)],
                           [("D15KAMEPA14", 97)] * 3)
    assert (text, uncertain) == ("D15 КАМЕРА 14", True)


def test_a_camera_number_is_not_tesseract_s_cyrillic_word_with_other_digits() -> None:
    text, uncertain = both([("СНМДЛОКАЛЬНЫЙ УЧАСТОК", 62)] * 3,
                           [("CH17 JIOKAJIbHbIH yHACTOK", 92)] * 3)
    assert text.startswith("CH17 ") and uncertain


def test_the_same_read_by_both_engines_is_certain() -> None:
    assert both([("CH31 ИК-10", 90)] * 3, [("CH31 ИК-10", 91)] * 3) == ("CH31 ИК-10", False)
    # the recogniser's run-on has more pieces than words: no word more
    assert both([("029 ЛОКАЛЬНЫЙ УЧАСТОК", 92)] * 3, [("D29JOKAJBHBINY4ACTOK", 87)] * 3) == (
        "D29 ЛОКАЛЬНЫЙ УЧАСТОК", False)


def test_different_numbers_make_the_label_uncertain() -> None:
    text, uncertain = both([("КАМЕРА 19", 80)] * 3, [("KaMepa 16", 99)] * 3)
    assert text == "КАМЕРА 16"  # the recogniser reads digits better
    assert uncertain


def test_a_word_one_engine_read_and_the_other_did_not_makes_it_uncertain() -> None:
    text, uncertain = both([("CAMERA) É", 70)] * 3, [("CAMERA", 100)] * 3)
    assert text == "CAMERA" and uncertain
    text, uncertain = both([("GAM 28 GAME", 83), ("GAM 28 САЩЕ", 71), ("GAM 28 САЩЕ", 78),
                            ("GAM 28 САМЕ", 76)], [("CAM 28 GATE", 96)] * 3)
    assert text == "CAM 28 GATE"  # the recogniser reads Latin better
    assert uncertain  # tesseract: САМЕ, corrected to CAM


def test_one_engine_alone_is_uncertain() -> None:
    r = consensus([("Camera 1", 90)] * 3)
    assert r is not None
    text, uncertain = ocr._merge_words(None, r)
    assert (text, uncertain) == ("CAMERA 1", True)
    assert ocr._merge_words(None, None) == ("", True)


def test_dates_that_did_not_parse_are_no_label() -> None:
    assert ocr._clock_like("4T 08 MOH 2023 03:28:49")
    assert ocr._clock_like("2819-11-77")
    assert ocr._clock_like("82-85-2828")
    assert not ocr._clock_like("КАМЕРА 25 ПКТ")
    assert not ocr._clock_like("D28 ИК-10")


def test_parts_of_one_line_are_merged_and_lines_apart_are_not() -> None:
    # the detector cut "CAM 28" | "YARD"; a date line below the label stays apart
    assert ocr._rows([(224, 259, 298, 281), (288, 262, 346, 280)]) == {
        (224, 259, 346, 281): ((224, 259, 298, 281), (288, 262, 346, 280))}
    assert sorted(ocr._rows([(11, 426, 123, 450), (12, 445, 199, 469)])) == [
        (11, 426, 123, 450), (12, 445, 199, 469)]
    assert list(ocr._rows([(297, 270, 338, 287), (341, 273, 349, 282)])) == [
        (297, 270, 349, 287)]


@pytest.mark.parametrize("index", [
    71,  # "CAM 28 YARD": the detector cut the line in two, the label lost its last word
    18,  # "Camera 6": the detector's box ended before the 6
    146,  # "Camera 1": a lone 1 the detector did not box, in a 352×288 clip
    122,  # "КАМЕРА 25 ПКТ": a date line was taken for the label
    28,  # "Камера 4": 13 px text tesseract reads as garbage, the recogniser as "KaMepa 4"
])
def test_labels_of_corpus_clips_once_misread(index: int, tmp_path: Path) -> None:
    from test_ocr_fixed_camera import sampled_frames

    # one x264 thread: the same bytes on every run (with two, the compression noise differs
    # from run to run, and once in a while the label with it)
    spec = replace(cctv.random_spec(7, index), encoder_threads=1)
    truth = cctv.make_clip(spec, tmp_path / spec.name)
    found = ocr.read_overlay(sampled_frames(tmp_path / spec.name))  # type: ignore[arg-type]
    assert found.label is not None and canonical(found.label) == canonical(truth.label), \
        (found.label, found.label_reads)


def test_label_read_type_is_unchanged() -> None:
    r = consensus([("КАМ 01", 90)] * 2)
    assert isinstance(r, LabelRead) and not r.uncertain


def test_the_second_look_uses_known_preparations() -> None:
    assert all(how in ocr.PREPARATIONS and on in ("tight", "line") for how, on in ocr.SECOND_LOOK)


def test_a_label_that_names_a_camera_is_not_grown_over_the_picture(tmp_path: Path) -> None:
    """Clip 8 of the 12-clip version-3 corpus: "CAM 6 КАРАНТИН" in a box, and beside the box
    a background the recogniser reads as "4". Only a label naming no camera ("Camera")
    is grown to find its lost number; this one stays as read."""
    from test_ocr_fixed_camera import sampled_frames

    spec = next(s for s in cctv.corpus_specs(7, 12, version=3) if s.name == "cctv_0008.mp4")
    assert spec.label == "CAM 6 КАРАНТИН"
    cctv.make_clip(spec, tmp_path / spec.name)
    found = ocr.read_overlay(sampled_frames(tmp_path / spec.name))  # type: ignore[arg-type]
    assert found.label is not None and canonical(found.label) == canonical(spec.label), \
        (found.label, found.label_reads)


def test_a_prison_word_the_recogniser_read_as_latin_and_digits_is_no_camera_number() -> None:
    """Clip 14 of the v3 corpus: tesseract reads ШИЗО, the recogniser (no Cyrillic) "WV30",
    which has the shape of a camera number ("CH26") and won. It is ШИЗО letter for letter
    through the recogniser's look-alikes, kept uncertain; a real number stays the
    recogniser's."""
    assert ocr._choose("ШИЗО", "WV30", t_sure=True, r_sure=True) == "ШИЗО"
    assert ocr._choose("ШИЗ0", "WV30", t_sure=False, r_sure=True) == "ШИЗО"
    assert ocr._choose("015", "D15", t_sure=True, r_sure=True) == "D15"
    assert ocr._choose("ШИЗО", "CH26", t_sure=True, r_sure=True) == "CH26"
    t = LabelRead(text="КАМ 17 ШИЗО", confidence=0.9, uncertain=False,
                  raw=("КАМ 17 ШИЗ0",) * 4, corrected=(("ШИЗ0", "ШИЗО"),))
    r = LabelRead(text="KAM17 WV30", confidence=0.95, uncertain=False,
                  raw=("KAM17 WV30",) * 4, corrected=())
    # uncertain: "CH30" is as exact a look-alike of СИЗО, and may be a channel's number
    assert ocr._merge_words(t, r) == ("КАМ 17 ШИЗО", True)
