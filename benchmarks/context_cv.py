"""Choose and measure the group-context rule (libtagger.classify.context) by nested artist-grouped CV.

The clip-alone verdicts are the shipped head's out-of-fold probabilities on the GTZAN train
split (``models/musicnn-head/cv_oof.json``, from the nested CV of ``benchmarks/head_cv.py``,
``probs_T``: tempered on inner folds, as the shipped head is). Groups are Sturm's artists
(``metadata/GTZANindex.txt``; an unidentified clip is its own group), the same groups the
head's folds were built on, so every artist lies inside one outer fold.

* outer: the head's 5 outer folds; each fold's clips are scored once with a rule chosen
  without them;
* inner (the choice): on the other 4 folds' clips, the grid point (weight, min_others,
  size_prior) with the best leave-one-out accuracy (ties: lower NLL), then the temperature
  minimising the NLL of the tracks the context changed;
* groups are always leave-one-out within the scored clips; a clip without another clip of
  its artist keeps its own verdict.

The constants of libtagger/classify/context.py are the same choice made on all 443 clips.
The test split is never read.

    .venv/bin/python benchmarks/context_cv.py                     # ~1 min on 2 cores
    .venv/bin/python benchmarks/context_cv.py --candidate lr_baseline
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from libtagger.classify import context
from libtagger.genres import GENRES
from libtagger.paths import shared_gtzan_dir
from libtagger.training.dataset import load_artists
from libtagger.training.evaluate import expected_calibration_error
from libtagger.training.head_cv import artist_groups, fit_temperature

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = tuple(round(float(w), 1) for w in np.arange(0.0, 1.01, 0.1))
#: The shipped procedure chooses the weight only; the full grid also tries a minimum group size and
#: a size prior (small groups count less). Nested CV says the extra levels do not pay (see the table).
GRIDS = {"weight": (WEIGHTS, (1,), (0.0,)),
         "full": (WEIGHTS, (1, 2, 3), (0.0, 1.0, 2.0, 4.0))}
GROUP_SIZES = (1, 2, 3, 5, 10)
SEED = 0


@dataclass(frozen=True)
class Rule:
    """One context rule: the keyword arguments of :func:`context.blend`."""

    weight: float
    min_others: int
    size_prior: float
    temperature: float = 1.0

    def kwargs(self) -> dict[str, float]:
        return {"weight": self.weight, "min_others": self.min_others, "size_prior": self.size_prior,
                "temperature": self.temperature}


def load_oof(path: Path, candidate: str, gtzan: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """ids, y (n,), outer fold (n,), log-probabilities (n, 10) and artist group ids (n,) of cv_oof.json."""
    tracks = json.loads(path.read_text())["tracks"]
    ids = [t["id"] for t in tracks]
    y = np.array([GENRES.index(t["true"]) for t in tracks])
    fold = np.array([t["fold"] for t in tracks])
    log_p = np.log(np.clip(np.array([t[f"{candidate}_probs_T"] for t in tracks]), 1e-12, 1.0))
    groups = artist_groups(ids, gtzan)
    split = [g for g in np.unique(groups) if len(set(fold[groups == g])) > 1]
    if split:
        raise SystemExit(f"{len(split)} artist(s) lie in two outer folds: the folds are not artist-grouped")
    return ids, y, fold, log_p, groups


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    return -float(np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))


def choose_rule(log_p: np.ndarray, y: np.ndarray, groups: np.ndarray, grid: str = "weight") -> Rule:
    """The point of ``GRIDS[grid]`` with the best leave-one-out accuracy on these clips (ties: lower NLL
    after its temperature), its temperature fitted on the clips the context changed."""
    others, n_others = context.leave_one_out_mean(log_p, groups)
    best: tuple[float, float] | None = None
    chosen = Rule(1.0, 1, 0.0)
    for w, m, s in itertools.product(*GRIDS[grid]):
        if w == 1.0 and (m, s) != (1, 0.0):
            continue  # weight 1 ignores the group: one grid point is enough
        rule = Rule(w, m, s)
        probs = context.blend(log_p, others, n_others, **rule.kwargs())
        rule = _with_temperature(rule, probs, y, n_others)
        probs = context.blend(log_p, others, n_others, **rule.kwargs())
        score = (float((probs.argmax(1) == y).mean()), -nll(probs, y))
        if best is None or score > best:
            best, chosen = score, rule
    return chosen


def _with_temperature(rule: Rule, probs_t1: np.ndarray, y: np.ndarray, n_others: np.ndarray) -> Rule:
    changed = n_others >= rule.min_others
    if rule.weight == 1.0 or changed.sum() < 10:
        return rule
    # softmax(log softmax(z) / T) = softmax(z / T): fitting T on the T = 1 probabilities is exact.
    return Rule(rule.weight, rule.min_others, rule.size_prior, round(fit_temperature(probs_t1[changed], y[changed]), 4))


def nested(log_p: np.ndarray, y: np.ndarray, fold: np.ndarray, groups: np.ndarray,
           fixed: Rule | None = None, grid: str = "weight") -> tuple[np.ndarray, list[Rule]]:
    """Outer-fold probabilities (n, 10) of the rule chosen on the other folds (or ``fixed`` with an
    inner-fitted temperature), and the rule of each fold."""
    out, rules = np.zeros_like(log_p), []
    for k in np.unique(fold):
        inner, outer = fold != k, fold == k
        if fixed is None:
            rule = choose_rule(log_p[inner], y[inner], groups[inner], grid)
        else:
            others, n_others = context.leave_one_out_mean(log_p[inner], groups[inner])
            rule = _with_temperature(fixed, context.blend(log_p[inner], others, n_others, **fixed.kwargs()),
                                     y[inner], n_others)
        out[outer] = context.combine(log_p[outer], groups[outer], **rule.kwargs())
        rules.append(rule)
    return out, rules


def fold_accuracy(probs_or_labels: np.ndarray, y: np.ndarray, fold: np.ndarray) -> tuple[float, float]:
    pred = probs_or_labels.argmax(1) if probs_or_labels.ndim == 2 else probs_or_labels
    acc = np.array([(pred[fold == k] == y[fold == k]).mean() for k in np.unique(fold)])
    return float(acc.mean()), float(acc.std(ddof=1))


def row(name: str, probs: np.ndarray | None, labels: np.ndarray | None, y: np.ndarray, fold: np.ndarray,
        largest: np.ndarray) -> str:
    """One table row: pooled accuracy, outer-fold mean ± sd, pooled accuracy without the largest
    artist (``largest``: (n,) bool), ECE."""
    pred = probs.argmax(1) if probs is not None else labels
    mean, sd = fold_accuracy(pred, y, fold)
    ece = f"{expected_calibration_error(probs, y):.3f}" if probs is not None else "n/a (hard labels)"
    rest = float((pred[~largest] == y[~largest]).mean())
    return f"| {name} | {float((pred == y).mean()):.3f} | {mean:.3f} ± {sd:.3f} | {rest:.3f} | {ece} |"


def main_table(log_p: np.ndarray, y: np.ndarray, fold: np.ndarray, groups: np.ndarray,
               artist_name: str) -> tuple[str, list[Rule]]:
    """Own vs context vs majority vote vs fixed weights; the chosen rules of the outer folds."""
    own = np.exp(log_p) / np.exp(log_p).sum(axis=1, keepdims=True)
    largest = groups == np.bincount(groups).argmax()
    chosen, rules = nested(log_p, y, fold, groups, grid="weight")
    full, _ = nested(log_p, y, fold, groups, grid="full")
    lines = ["| verdict | pooled accuracy | outer-fold accuracy mean ± sd | "
             f"pooled without {artist_name} ({int(largest.sum())} clips) | ECE (15 bins) |", "|---|---|---|---|---|",
             row("clip alone (today)", own, None, y, fold, largest),
             row("majority vote of top-1 labels in the artist (own + others)", None,
                 context.majority_vote(own, groups), y, fold, largest),
             row("**chosen rule**: weight and T chosen on the other folds", chosen, None, y, fold, largest),
             row("weight, min others, size prior and T chosen on the other folds", full, None, y, fold, largest)]
    for w in (1.0, 0.7, 0.5, 0.3, 0.0):
        fixed = Rule(w, 1, 0.0)
        lines.append(row(f"weight {w}, T = 1", context.combine(log_p, groups, **fixed.kwargs()), None, y, fold,
                         largest))
        if w < 1.0:
            lines.append(row(f"weight {w}, T fitted on the other folds", nested(log_p, y, fold, groups, fixed=fixed)[0],
                             None, y, fold, largest))
    return "\n".join(lines), rules


def group_size_table(log_p: np.ndarray, y: np.ndarray, fold: np.ndarray, groups: np.ndarray,
                     rules: list[Rule], repeats: int = 20) -> str:
    """Each clip with at least m other clips of its artist, pooled with m of them drawn at random
    (``repeats`` draws, seeded), with its fold's nested rule except min_others (so m = 1 counts)."""
    rng = np.random.default_rng(SEED)
    rule_of = {k: rules[i] for i, k in enumerate(np.unique(fold))}
    members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    lines = ["| other tracks given | clips (with ≥ m others) | clip alone | with context (mean of draws) | ECE |",
             "|---|---|---|---|---|"]
    for m in GROUP_SIZES:
        clips = [i for i in range(len(y)) if len(members[groups[i]]) - 1 >= m]
        if not clips:
            continue
        accs, eces = [], []
        for _ in range(repeats):
            probs = np.zeros((len(clips), log_p.shape[1]))
            for j, i in enumerate(clips):
                others = rng.choice(np.setdiff1d(members[groups[i]], [i]), size=m, replace=False)
                r = rule_of[fold[i]]
                probs[j] = context.blend(log_p[[i]], log_p[others].mean(0, keepdims=True), np.array([m]),
                                         weight=r.weight, min_others=1, size_prior=r.size_prior,
                                         temperature=r.temperature)[0]
            accs.append(float((probs.argmax(1) == y[clips]).mean()))
            eces.append(expected_calibration_error(probs, y[clips]))
        alone = float((log_p[clips].argmax(1) == y[clips]).mean())
        lines.append(f"| {m} | {len(clips)} | {alone:.3f} | {np.mean(accs):.3f} ± {np.std(accs):.3f} | "
                     f"{np.mean(eces):.3f} |")
    return "\n".join(lines)


def mixed_album_groups(y: np.ndarray, rng: np.random.Generator, size: int = 4) -> np.ndarray:
    """(n,) group ids of made-up albums of ``size`` clips of ``size`` different genres (-1: left over)."""
    groups, pool, gid = np.full(len(y), -1), list(rng.permutation(len(y))), 0
    while len(pool) >= size:
        chosen: list[int] = []
        for i in pool:
            if y[i] not in {y[j] for j in chosen}:
                chosen.append(i)
            if len(chosen) == size:
                break
        if len(chosen) < size:
            break
        for i in chosen:
            groups[i] = gid
            pool.remove(i)
        gid += 1
    return groups


def guarded_combine(log_p: np.ndarray, groups: np.ndarray, rule: Rule, agreement: float) -> np.ndarray:
    """The rule, but a track pools only when its other tracks agree: the top genre of their mean
    probabilities reaches ``agreement`` (0: always, the shipped rule)."""
    probs = np.exp(log_p) / np.exp(log_p).sum(axis=1, keepdims=True)
    mean_probs, _ = context.leave_one_out_mean(probs, groups)
    others, n_others = context.leave_one_out_mean(log_p, groups)
    n_used = np.where(mean_probs.max(axis=1) >= agreement, n_others, 0)
    return context.blend(log_p, others, n_used, **rule.kwargs())


def mixed_album_table(log_p: np.ndarray, y: np.ndarray, groups: np.ndarray, rule: Rule,
                      repeats: int = 10, threshold: float = 0.6) -> str:
    """What pooling costs on an album whose tracks are of different genres (a soundtrack, an
    unflagged sampler): made-up albums of 4 clips of 4 genres, beside the real artist groups.
    Written: top probability >= ``threshold`` (the scan's default)."""
    def scored(probs: np.ndarray, yy: np.ndarray) -> tuple[float, float, float]:
        written = probs.max(axis=1) >= threshold
        right = probs.argmax(axis=1) == yy
        return float(right.mean()), float(written.mean()), float(right[written].mean())

    rng = np.random.default_rng(SEED)
    draws = [mixed_album_groups(y, rng) for _ in range(repeats)]
    lines = ["| rule | artist groups: accuracy, written, precision | mixed 4-genre albums: accuracy, written, "
             "precision |", "|---|---|---|"]
    rows = [("clip alone", lambda lp, g: np.exp(lp) / np.exp(lp).sum(axis=1, keepdims=True))]
    rows += [("shipped rule" if a == 0.0 else f"pool only when the others agree at >= {a}",
              lambda lp, g, a=a: guarded_combine(lp, g, rule, a)) for a in (0.0, 0.4, 0.5)]
    for name, fn in rows:
        artist = scored(fn(log_p, groups), y)
        mixed = np.mean([scored(fn(log_p[g >= 0], g[g >= 0]), y[g >= 0]) for g in draws], axis=0)
        lines.append(f"| {name} | {artist[0]:.3f}, {artist[1]:.3f}, {artist[2]:.3f} | "
                     f"{mixed[0]:.3f}, {mixed[1]:.3f}, {mixed[2]:.3f} |")
    return "\n".join(lines)


def person_table(log_p: np.ndarray, y: np.ndarray, groups: np.ndarray, rule: Rule, share: float = 0.25,
                 repeats: int = 20) -> str:
    """A person's genre on a random ``share`` of the clips (simulated: always the true genre),
    scored on the other clips. Optimistic: real people's genres are not always GTZAN's."""
    rng = np.random.default_rng(SEED)
    lines = [f"| person's genre on {share:.0%} of the clips (= the truth) | accuracy of the other clips | ECE |",
             "|---|---|---|"]
    settings = [("not used (siblings lend their model verdict)", None)] + [(f"counts as p = {c}", c)
                                                                          for c in (0.6, 0.9, 0.99)]
    for name, conf in settings:
        accs, eces = [], []
        for _ in range(repeats):
            known = rng.random(len(y)) < share
            labels = np.where(known, y, -1)
            probs = context.combine(log_p, groups, **rule.kwargs(),
                                    person_labels=labels if conf else None, person_confidence=conf or 0.9)
            accs.append(float((probs[~known].argmax(1) == y[~known]).mean()))
            eces.append(expected_calibration_error(probs[~known], y[~known]))
        lines.append(f"| {name} | {np.mean(accs):.3f} ± {np.std(accs):.3f} | {np.mean(eces):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--oof", type=Path, default=ROOT / "models" / "musicnn-head" / "cv_oof.json")
    parser.add_argument("--candidate", default="recipe", help="recipe (the shipped head) or lr_baseline")
    parser.add_argument("--gtzan", type=Path, default=None, help="GTZAN reference data (default: ../shared/gtzan)")
    args = parser.parse_args(argv)
    ids, y, fold, log_p, groups = load_oof(args.oof, args.candidate, args.gtzan or shared_gtzan_dir())
    n_groups = len(np.unique(groups))
    print(f"{args.candidate}: {len(y)} out-of-fold train clips, {n_groups} artist groups "
          f"({int((np.bincount(np.unique(groups, return_inverse=True)[1].ravel()) > 1).sum())} with 2+ clips), "
          f"{len(np.unique(fold))} outer folds\n")
    members = np.flatnonzero(groups == np.bincount(groups).argmax())
    artist_name = load_artists(args.gtzan or shared_gtzan_dir()).get(ids[members[0]], "the largest artist")
    table, rules = main_table(log_p, y, fold, groups, artist_name)
    print(table)
    print("\nrules chosen per outer fold:", ", ".join(f"w {r.weight} min {r.min_others} prior {r.size_prior} "
                                                      f"T {r.temperature}" for r in rules))
    print("\nGroup size (m other clips drawn at random; 20 seeded draws):\n")
    print(group_size_table(log_p, y, fold, groups, rules))
    final = choose_rule(log_p, y, groups)
    print(f"\nChosen on all {len(y)} clips (the constants of libtagger/classify/context.py): weight {final.weight}, "
          f"min_others {final.min_others}, size_prior {final.size_prior}, temperature {final.temperature}")
    shipped = Rule(context.WEIGHT, context.MIN_OTHERS, context.SIZE_PRIOR, context.TEMPERATURE)
    if args.candidate == "recipe" and shipped != final:
        print(f"WARNING: context.py ships {shipped}, this run chooses {final}", file=sys.stderr)
    print("\nMixed albums (made up: 4 clips of 4 genres, 10 draws; in-sample, shipped constants):\n")
    print(mixed_album_table(log_p, y, groups, shipped))
    print("\nA person's genre on sibling tracks (simulation, shipped rule):\n")
    print(person_table(log_p, y, groups, shipped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
