"""MSD_musicnn's own tags as genre evidence (issue 20): the mapping, zero-shot evidence, the blend, beyond-ten names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from conftest import make_audio
from libtagger.audio.musicnn import INFERENCE_PATCH_HOP, TAGS, mel_patches
from libtagger.classify import msd_tags
from libtagger.genres import GENRES

CLASSICAL, JAZZ, POP, ROCK = (GENRES.index(g) for g in ("classical", "jazz", "pop", "rock"))


def taggram(n_patches: int, base: float = 0.05, **tags: float) -> np.ndarray:
    """(n_patches, 50) with every tag at ``base`` except the named ones (``Hip_Hop`` for "Hip-Hop")."""
    t = np.full((n_patches, len(TAGS)), base)
    for name, value in tags.items():
        t[:, TAGS.index(name.replace("_", "-") if name == "Hip_Hop" else name)] = value
    return t


def test_mapping_names_only_real_tags_and_known_labels():
    for label, tags in msd_tags.GENRE_TAGS.items():
        assert tags and set(tags) <= set(TAGS), label
        assert label in GENRES or label in msd_tags.BEYOND_TEN
    assert set(msd_tags.BEYOND_TEN) <= set(msd_tags.GENRE_TAGS)
    assert {"Electronic", "Folk", "R&B"} <= set(msd_tags.BEYOND_TEN.values())
    # ID3v2.3 readers split a genre at "/": a display name must stay one genre.
    assert not any("/" in name for name in msd_tags.BEYOND_TEN.values())
    # The three GTZAN genres no tag names get no evidence rather than a made-up one.
    assert {g for g in GENRES if g not in msd_tags.GENRE_TAGS} == {"classical", "disco", "reggae"}


def test_evidence_is_the_strongest_tag_averaged_over_every_patch_of_every_segment():
    # Segment 1: 2 patches with rock 0.9; segment 2: 6 patches with rock 0.1 -> patch mean 0.3.
    # hard rock is 0.35 throughout, so rock's evidence is the stronger tag, 0.35, not 0.3.
    segments = [taggram(2, rock=0.9, **{"hard rock": 0.35}), taggram(6, rock=0.1, **{"hard rock": 0.35})]
    ev = msd_tags.ten_genre_evidence(segments)
    assert ev.shape == (10,)
    assert ev[ROCK] == pytest.approx(0.35)
    assert ev[POP] == pytest.approx(0.05)
    assert np.isnan(ev[[GENRES.index(g) for g in ("classical", "disco", "reggae")]]).all()
    beyond = msd_tags.genre_evidence(segments, ("electronic", "rnb"))
    assert beyond == pytest.approx([0.05, 0.05])


@pytest.mark.parametrize("bad", [[], [np.zeros((3, 49))], [np.zeros((0, 50))], [np.zeros(50)]])
def test_evidence_refuses_taggrams_of_the_wrong_shape(bad):
    with pytest.raises(ValueError, match="taggram of shape"):
        msd_tags.ten_genre_evidence(bad)


def test_zero_shot_never_picks_a_genre_without_tags():
    ev = np.array([msd_tags.ten_genre_evidence([taggram(3, jazz=0.6)]),
                   msd_tags.ten_genre_evidence([taggram(3, Hip_Hop=0.7, pop=0.4)])])
    assert [GENRES[i] for i in msd_tags.zero_shot(ev)] == ["jazz", "hiphop"]


def test_blend_with_weight_zero_and_unit_temperature_is_the_head():
    head = np.array([[0.1, 0.5, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]])
    ev = msd_tags.ten_genre_evidence([taggram(4, rock=0.8)])[None, :]
    assert msd_tags.blend(head, ev, 0.0, 1.0) == pytest.approx(head)


def test_blend_lets_strong_tags_overturn_a_lukewarm_head():
    head = np.full(10, 0.02)
    head[[POP, ROCK]] = 0.46, 0.38                        # the head leans pop
    ev = msd_tags.ten_genre_evidence([taggram(5, rock=0.7, pop=0.05)])
    blended = msd_tags.blend(head, ev, msd_tags.BLEND_WEIGHT)
    assert blended.shape == (10,) and blended.sum() == pytest.approx(1.0)
    assert int(np.argmax(blended)) == ROCK
    assert int(np.argmax(msd_tags.blend(head, ev, 0.0))) == POP


def test_blend_leaves_a_genre_without_tags_to_the_head_when_the_tags_say_nothing():
    # Equal evidence for the seven tagged genres: the neutral fill gives classical the same, so
    # the blend changes nothing but the temperature.
    head = np.full(10, 0.05)
    head[CLASSICAL] = 0.55
    ev = msd_tags.ten_genre_evidence([taggram(3, base=0.1)])
    assert msd_tags.blend(head, ev, 1.0, 1.0) == pytest.approx(head)


def test_blend_temperature_softens_and_bad_arguments_are_named():
    head = np.full(10, 0.02)
    head[JAZZ] = 0.82
    ev = msd_tags.ten_genre_evidence([taggram(3, jazz=0.9)])
    assert msd_tags.blend(head, ev, 0.5, 1.5).max() < msd_tags.blend(head, ev, 0.5, 1.0).max()
    with pytest.raises(ValueError, match="weight must be >= 0, got -1"):
        msd_tags.blend(head, ev, -1.0)
    with pytest.raises(ValueError, match="temperature must be positive, got 0"):
        msd_tags.blend(head, ev, 0.5, 0.0)
    with pytest.raises(ValueError, match=r"must both be \(n, 10\)"):
        msd_tags.blend(head[:9], ev[:9])


def unsure_head() -> np.ndarray:
    p = np.full(10, 0.05)
    p[[POP, ROCK]] = 0.35, 0.25
    return p


def test_beyond_ten_names_electronic_when_its_tags_beat_an_unsure_verdict():
    segs = [taggram(6, electronic=0.55, pop=0.2)]
    assert msd_tags.beyond_ten_label(unsure_head(), segs) == "electronic"
    assert msd_tags.BEYOND_TEN["electronic"] == "Electronic"


def test_beyond_ten_never_replaces_a_confident_verdict_unless_told():
    confident = np.full(10, 0.02)
    confident[POP] = 0.82
    segs = [taggram(6, electronic=0.55, pop=0.2)]
    assert msd_tags.beyond_ten_label(confident, segs) is None
    assert msd_tags.beyond_ten_label(confident, segs, min_confidence=math.inf) == "electronic"


def test_beyond_ten_needs_the_floor_and_to_beat_the_verdicts_own_evidence():
    weak = [taggram(6, soul=0.3, pop=0.1)]                        # below BEYOND_FLOOR (0.4)
    assert msd_tags.beyond_ten_label(unsure_head(), weak) is None
    beaten = [taggram(6, folk=0.45, pop=0.5)]                     # the verdict (pop) is stronger
    assert msd_tags.beyond_ten_label(unsure_head(), beaten) is None
    # A verdict without tags (classical) is compared with the strongest tagged genre (jazz 0.6).
    classical = np.full(10, 0.05)
    classical[CLASSICAL] = 0.55
    assert msd_tags.beyond_ten_label(classical, [taggram(6, ambient=0.5, jazz=0.6)]) is None
    assert msd_tags.beyond_ten_label(classical, [taggram(6, ambient=0.5, jazz=0.3)]) == "ambient"


def test_real_audio_through_the_numpy_front_end(tmp_path):
    # A real FLAC file through the scan's own NumPy MSD_musicnn: its taggram feeds the evidence,
    # the blend and the beyond-ten rule with the shapes they document.
    from libtagger.audio.musicnn_numpy import load_runtime

    path = make_audio(tmp_path / "chords.flac", seconds=9.0, sr=22050, channels=1)
    y, sr = sf.read(path, dtype="float32")
    tg = load_runtime().taggrams(mel_patches(y, sr=sr, hop=INFERENCE_PATCH_HOP))
    assert tg.shape == (3, len(TAGS))
    ev = msd_tags.ten_genre_evidence([tg])
    tagged = [GENRES.index(g) for g in GENRES if g in msd_tags.GENRE_TAGS]
    assert ((ev[tagged] > 0) & (ev[tagged] < 1)).all()
    assert ev[ROCK] == pytest.approx(max(tg[:, TAGS.index(t)].mean() for t in ("rock", "classic rock", "hard rock")))
    blended = msd_tags.blend(np.full(10, 0.1), ev)
    assert blended.sum() == pytest.approx(1.0) and np.isfinite(blended).all()
    assert msd_tags.beyond_ten_label(blended, [tg], min_confidence=math.inf) in (None, *msd_tags.BEYOND_TEN)
