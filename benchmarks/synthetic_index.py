"""A synthetic libtagger index of any size, for timings that need no audio (issue #10 part 5).

:func:`build_synthetic_index` makes the tables with :class:`libtagger.store.index.Index`
itself (so the file has exactly the schema, indexes and meta a real index has), then fills
them with one bulk ``executemany`` per table in one transaction, which is what makes
100,000 tracks take seconds instead of the minutes ``Index.save_track`` would need.

What a row holds is what a real scan leaves (see :mod:`libtagger.scan.classification`):

* ``tracks``: paths in ``Artist/Album/NN Title.ext`` folders (artist and album columns named
  after them, person genres = the previous genre, tags read), a mix of formats, statuses,
  genres and confidences in realistic proportions (:data:`STATUS_WEIGHTS`,
  :data:`GENRE_WEIGHTS`), a previous genre for a share of tracks (some of them disagreeing
  with the verdict), reasons for ``rejected`` tracks, a few missing files;
* ``segments``: ``segments_per_track`` rows per analysed track with 57 float32 features and a
  float16 taggram of ``taggram_rows`` x 50 (28 rows: a 30-s segment at musicnn's 1-s patch
  hop; ~10 at a 3-s hop). A taggram is smooth over time like a real one (a genre profile plus
  an AR(1) drift), so compression ratios measured on it are not those of white noise;
* ``runs`` and ``journal``: ``n_runs`` finished scans and one journal row per written track.

Given ``files`` (real paths, e.g. tiny WAVs), their rows take those paths with their real
size and mtime, so a ``libtagger scan`` over them is a no-op re-run; pass
``status_weights=NOOP_STATUS_WEIGHTS`` so that no track is one a scan would redo.

Columns can be added by a later caller: :func:`track_rows` returns plain dicts, and any key
the ``tracks`` table lacks is added as a column (sqlite-utils ``alter=True``).

    >>> from benchmarks.synthetic_index import build_synthetic_index   # doctest: +SKIP
    >>> build_synthetic_index("/tmp/index.db", 10_000)                  # doctest: +SKIP
    SyntheticIndex(path=..., tracks=10000, segments=29430, ...)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.genres import GENRES, display_name
from libtagger.store.index import Index, path_key

ROOT = Path(__file__).resolve().parent.parent

#: The width of a feature row and of a taggram row (audio.features / audio.musicnn, not imported:
#: they pull in librosa and TensorFlow).
N_FEATURES, N_TAGS = 57, 50
#: Rows of a 30-s segment's taggram at musicnn's 1-s patch hop (3-s patches); ~10 at a 3-s hop.
ROWS_1S_HOP, ROWS_3S_HOP = 28, 10

#: Final statuses of a library scanned a few times (most files tagged, some person-set genres
#: kept, some below the confidence threshold, a few rejected by the music check or unreadable).
STATUS_WEIGHTS = {"tagged": 0.66, "kept": 0.14, "unsure": 0.12, "rejected": 0.04, "would-tag": 0.02,
                  "error": 0.02}
#: Statuses a re-run with the default options leaves alone (no error, no dry-run verdict).
NOOP_STATUS_WEIGHTS = {"tagged": 0.70, "kept": 0.14, "unsure": 0.12, "rejected": 0.04}
#: A personal library is not GTZAN: rock and pop dominate.
GENRE_WEIGHTS = {"rock": 0.27, "pop": 0.17, "jazz": 0.09, "hiphop": 0.09, "metal": 0.08,
                 "classical": 0.08, "blues": 0.06, "country": 0.06, "disco": 0.05, "reggae": 0.05}
#: Rejection reasons (libtagger.classify.openset.REASONS values) and their shares.
REASON_WEIGHTS = {"unlike the ten genres": 0.55, "not music: speech": 0.25, "not music: noise": 0.1,
                  "not music: silence": 0.06, "not music: tone": 0.04}
#: Extension, stored format name, share.
FORMATS = (("mp3", "MP3", 0.55), ("flac", "FLAC", 0.25), ("m4a", "MP4", 0.12), ("ogg", "OGG", 0.05),
           ("wav", "WAV", 0.03))
#: Shares of tracks with a previous genre, of those disagreeing with the verdict, of missing files.
PREVIOUS_SHARE, DISAGREE_SHARE, MISSING_SHARE = 0.45, 0.3, 0.01


def shipped_ids() -> tuple[str, str]:
    """(model_id of musicnn-head, model_id of the music detector): what a default scan records."""
    read = lambda name: json.loads((ROOT / "models" / name / "meta.json").read_text())["model_id"]  # noqa: E731
    return read("musicnn-head"), read("music-detector")


@dataclass(frozen=True)
class SyntheticIndex:
    """What :func:`build_synthetic_index` wrote."""

    path: Path
    tracks: int
    segments: int
    runs: int
    journal: int
    sample_path: str  # an indexed, present track's path (for ``libtagger show``)


def _choice(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def synthetic_paths(n: int, root: str, rng: np.random.Generator) -> list[str]:
    """``root/Artist NNNN/Album NN (year)/NN Title.ext``: ~12 tracks an album, ~3 albums an artist."""
    exts = [e for e, _, _ in FORMATS]
    shares = np.array([s for _, _, s in FORMATS])
    paths, i, artist = [], 0, 0
    while i < n:
        for album in range(int(rng.integers(1, 6))):
            ext = exts[rng.choice(len(exts), p=shares)]  # one format per album, as rips are
            year = int(rng.integers(1960, 2025))
            for t in range(int(rng.integers(8, 17))):
                if i == n:
                    break
                paths.append(f"{root}/Artist {artist:05d}/Album {album:02d} ({year})/{t + 1:02d} Title {i}.{ext}")
                i += 1
        artist += 1
    return paths


def taggrams(n: int, rows: int, genres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n`` taggrams (n, rows, 50) float16 in [0, 1]: a per-genre tag profile, a per-segment
    offset and an AR(1) drift over the patches (neighbouring 3-s patches overlap by 2 s)."""
    profiles = rng.beta(0.6, 4.0, size=(len(GENRES), N_TAGS))  # most tags unlikely, a few strong
    genre_idx = np.array([GENRES.index(g) if g in GENRES else 0 for g in genres])
    base = profiles[genre_idx] + rng.normal(0, 0.05, size=(n, N_TAGS))
    out = np.empty((n, rows, N_TAGS), dtype=np.float32)
    drift = rng.normal(0, 0.04, size=(n, N_TAGS)).astype(np.float32)
    for r in range(rows):
        drift = 0.8 * drift + rng.normal(0, 0.025, size=(n, N_TAGS)).astype(np.float32)
        out[:, r] = base + drift
    return np.clip(out, 0.0, 1.0).astype(np.float16)


def track_rows(n: int, rng: np.random.Generator, *, paths: Sequence[str], model_id: str,
               detector_id: str | None, run_ids: np.ndarray, status_weights: dict[str, float],
               stats: Sequence[tuple[int, int]] | None, min_confidence: float) -> list[dict[str, Any]]:
    """The ``tracks`` rows (without ``id``: ids are 1..n in this order)."""
    status = _choice(rng, status_weights, n)
    genre = _choice(rng, GENRE_WEIGHTS, n)
    runner = _choice(rng, GENRE_WEIGHTS, n)
    # voted confidence: high for tagged/kept/would-tag, below the threshold for unsure
    conf = np.where(status == "unsure", rng.uniform(0.2, min_confidence - 0.01, n),
                    min_confidence + (1 - min_confidence) * rng.beta(2.5, 1.2, n))
    reasons = _choice(rng, REASON_WEIGHTS, n)
    has_prev = rng.random(n) < PREVIOUS_SHARE
    disagree = rng.random(n) < DISAGREE_SHARE
    prev = _choice(rng, GENRE_WEIGHTS, n)
    missing = rng.random(n) < MISSING_SHARE if stats is None else np.zeros(n, dtype=bool)
    ext_format = {e: f for e, f, _ in FORMATS}
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(n):
        s = str(status[i])
        text, raw = path_key(paths[i])
        verdict = None if s in ("error", "rejected") else display_name(str(genre[i]))
        # a kept track's genre was set by a person; others had one before the first write
        previous = (display_name(str(prev[i] if disagree[i] else genre[i]))
                    if s == "kept" or has_prev[i] else None)
        size, mtime_ns = stats[i] if stats is not None else (
            int(rng.integers(2_000_000, 60_000_000)), 1_600_000_000_000_000_000 + i * 1_000_000_000)
        stamp = (start + timedelta(seconds=int(i * 7))).isoformat(timespec="seconds")
        album_folder = os.path.dirname(paths[i])
        album, artist = os.path.basename(album_folder), os.path.basename(os.path.dirname(album_folder))
        rows.append({
            "path": text, "path_bytes": raw, "size": size, "mtime_ns": mtime_ns,
            "fingerprint": None if s == "error" else f"{rng.integers(2**63):016x}{i:048x}",
            "format": ext_format[paths[i].rsplit(".", 1)[-1]],
            "duration": None if s == "error" else round(float(rng.uniform(120, 420)), 2),
            "samplerate": None if s == "error" else 44100, "channels": None if s == "error" else 2,
            "status": s, "error": "cannot decode: Invalid data found when processing input" if s == "error" else None,
            "genre": verdict, "confidence": None if verdict is None else round(float(conf[i]), 4),
            "runner_up": None if verdict is None else display_name(str(runner[i])),
            "runner_up_confidence": None if verdict is None else round(float(conf[i]) * 0.3, 4),
            "previous_genre": previous, "written": int(s == "tagged"),
            "written_genre": verdict if s == "tagged" else None,
            "model_id": None if s == "error" else model_id, "missing": int(missing[i]),
            "analysed_at": None if s == "error" else stamp, "updated_at": stamp,
            "run_id": int(run_ids[i]), "reason": str(reasons[i]) if s == "rejected" else None,
            "detector_id": None if s == "error" else detector_id,
            # what the scan reads from the file's own tags (set: a re-run reads no file again)
            "person_genres": json.dumps([previous]) if previous else None,
            "artist": artist, "albumartist": artist, "album": album, "tags_read_at": stamp,
            "compilation": 0,  # read with the others: a NULL would make the next scan read the tags again
            # the own verdict a current scan keeps beside the pooled one (here: the same; NULL would
            # make the next scan fill it in from the segments)
            "own_genre": verdict, "own_confidence": None if verdict is None else round(float(conf[i]), 4),
            "own_probabilities": None if verdict is None else _own_probabilities(str(genre[i]), float(conf[i])),
        })
    return rows


def _own_probabilities(label: str, confidence: float) -> str:
    """JSON of a probability vector over the ten genres with ``confidence`` on ``label``."""
    rest = (1.0 - confidence) / (len(GENRES) - 1)
    return json.dumps([round(confidence if g == label else rest, 6) for g in GENRES])


def build_synthetic_index(path: str | os.PathLike, n_tracks: int, *, seed: int = 0,
                          segments_per_track: int = 3, taggram_rows: int = ROWS_1S_HOP,
                          with_taggrams: bool = True, root: str = "/music",
                          files: Sequence[str | os.PathLike] | None = None,
                          status_weights: dict[str, float] | None = None,
                          model_id: str | None = None, detector_id: str | None = "shipped",
                          n_runs: int = 30, min_confidence: float = 0.6,
                          chunk: int = 5000, page_size: int | None = None) -> SyntheticIndex:
    """Write a synthetic index of ``n_tracks`` tracks at ``path`` (a new file).

    Parameters
    ----------
    path : the SQLite file to create (must not exist).
    n_tracks : tracks to write.
    segments_per_track : segment rows per analysed track (a scan's default is 3).
    taggram_rows : taggram rows per segment (28 at a 1-s patch hop, ~10 at 3 s).
    with_taggrams : False stores ``taggram`` NULL (the seed model with the music check off).
    root : the folder the synthetic paths are under (ignored when ``files`` is given).
    files : real paths to index instead of synthetic ones (len must be ``n_tracks``); their
        rows get the files' real size and mtime.
    status_weights : shares of each status (default :data:`STATUS_WEIGHTS`).
    model_id, detector_id : recorded ids; default the shipped musicnn-head's, and ``"shipped"``
        the shipped detector's (None: the music check was off).
    n_runs : finished ``scan`` runs the tracks are spread over.
    min_confidence : the threshold ``unsure`` confidences stay below.
    chunk : tracks generated and inserted per batch (bounds memory).
    page_size : SQLite page size of the new file (default: SQLite's, 4096), to measure how
        segment rows pack into pages.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(path)
    head_id, shipped_detector = shipped_ids()
    model_id = model_id or head_id
    detector_id = shipped_detector if detector_id == "shipped" else detector_id
    rng = np.random.default_rng(seed)
    if files is not None:
        if len(files) != n_tracks:
            raise ValueError(f"{len(files)} files for {n_tracks} tracks")
        paths = [os.path.abspath(os.fspath(f)) for f in files]
        stats = [(st.st_size, st.st_mtime_ns) for st in (os.stat(p) for p in paths)]
    else:
        paths, stats = synthetic_paths(n_tracks, root, rng), None

    if page_size is not None:  # fixed by the first table; the sqlite_stat1 table is dropped at once
        import sqlite3

        with sqlite3.connect(path) as con:
            con.execute(f"PRAGMA page_size = {int(page_size)}")
            con.execute("create table page_size_probe (x)")
            con.execute("drop table page_size_probe")
        con.close()
    index = Index(path)  # the real schema, indexes and meta
    index.close()
    index = Index(path)
    db = index.db
    conn = db.conn
    conn.execute("PRAGMA synchronous = OFF")  # a benchmark fixture: durability is not the point
    run_ids = np.sort(rng.integers(1, n_runs + 1, size=n_tracks))
    n_segments = n_journal = 0
    with db.atomic():
        for r in range(1, n_runs + 1):
            day = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(days=r)
            db["runs"].insert({
                "id": r, "kind": "scan", "started_at": day.isoformat(timespec="seconds"),
                "finished_at": (day + timedelta(hours=2)).isoformat(timespec="seconds"),
                "outcome": "finished", "pid": 1000 + r, "host": "synthetic",
                "arguments": json.dumps({"roots": [root], "synthetic": True, "context": "album"}), "model_id": model_id,
                "dry_run": 0, "counts": json.dumps({"tagged": int((run_ids == r).sum())}),
            })
        rows = track_rows(n_tracks, rng, paths=paths, model_id=model_id, detector_id=detector_id,
                          run_ids=run_ids, status_weights=status_weights or STATUS_WEIGHTS,
                          stats=stats, min_confidence=min_confidence)
        columns = list(rows[0])
        missing_cols = [c for c in columns if c not in db["tracks"].columns_dict]
        for c in missing_cols:  # a caller's extra columns (artist, album...)
            db["tracks"].add_column(c, type(next((r[c] for r in rows if r[c] is not None), "")))
        track_sql = (f"insert into tracks (id, {', '.join(f'[{c}]' for c in columns)}) "
                     f"values ({', '.join('?' * (len(columns) + 1))})")
        seg_sql = ("insert into segments (track_id, idx, start, [end], genre, confidence, probabilities, "
                   "features, taggram) values (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        journal_sql = ("insert into journal (track_id, run_id, path, path_bytes, action, at, before, genre, "
                       "completed) values (?, ?, ?, ?, 'write', ?, ?, ?, 1)")
        for lo in range(0, n_tracks, chunk):
            block = rows[lo:lo + chunk]
            conn.executemany(track_sql, ((lo + k + 1, *(r[c] for c in columns)) for k, r in enumerate(block)))
            analysed = [(lo + k + 1, r) for k, r in enumerate(block) if r["status"] != "error"]
            m = len(analysed) * segments_per_track
            seg_genres = [str(r["genre"] or "rock").lower().replace("-", "") for _, r in analysed
                          for _ in range(segments_per_track)]
            feats = rng.normal(0, 1, size=(m, N_FEATURES)).astype(np.float32)
            tgs = taggrams(m, taggram_rows, np.array(seg_genres), rng) if with_taggrams else None
            probs = rng.dirichlet(np.full(len(GENRES), 0.3), size=m)
            seg_rows, j = [], 0
            for track_id, r in analysed:
                length = r["duration"]
                for idx in range(segments_per_track):
                    start = round((length - 30) * idx / max(segments_per_track - 1, 1), 2)
                    p = probs[j]
                    best = int(np.argmax(p))
                    seg_rows.append((track_id, idx, start, start + 30.0, display_name(GENRES[best]),
                                     float(p[best]), json.dumps([round(float(x), 6) for x in p]),
                                     feats[j].tobytes(), tgs[j].tobytes() if tgs is not None else None))
                    j += 1
            conn.executemany(seg_sql, seg_rows)
            n_segments += len(seg_rows)
            journal = [(tid, r["run_id"], r["path"], r["path_bytes"], r["updated_at"],
                        json.dumps({"version": 1, "format": "id3", "genres": [r["previous_genre"]]
                                    if r["previous_genre"] else [], "has_tags": True, "marker": None,
                                    "id3_version": [2, 4, 0], "mp4_gnre": None}), r["genre"])
                       for tid, r in analysed if r["written"]]
            conn.executemany(journal_sql, journal)
            n_journal += len(journal)
    # No ANALYZE: a real index has no sqlite_stat1 either, so the query plans are the same.
    sample = next(r["path"] for r in rows if r["status"] == "tagged" and not r["missing"])
    index.close()
    return SyntheticIndex(path, n_tracks, n_segments, n_runs, n_journal, sample)


if __name__ == "__main__":
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--taggram-rows", type=int, default=ROWS_1S_HOP)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t = time.perf_counter()
    made = build_synthetic_index(args.path, args.tracks, seed=args.seed, taggram_rows=args.taggram_rows)
    print(f"{made} in {time.perf_counter() - t:.1f} s, {args.path.stat().st_size / 1e6:.0f} MB")
