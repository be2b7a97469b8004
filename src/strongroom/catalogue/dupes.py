"""Near-duplicate videos from their per-second PDQ hashes (a vPDQ-style comparison).

For every video, each of its frames is looked up in a faiss binary index of every frame in the
vault; two videos match when at least `MIN_MATCH` of one's frames have a frame of the other
within `PDQ_THRESHOLD` bits. Taking the better of the two directions means a trimmed copy
(all of its frames are in the original) still matches a longer original. Matching videos are
grouped (transitively), and each group names its best-quality member — the one to cite.

Thresholds (documented for the court, see also `strongroom dupes --json`):
* PDQ distance ≤ 31 of 256 bits is Meta's recommended match threshold; unrelated frames sit
  near 128, re-encodes of the same frame near 0–20.
* Frames with PDQ quality < 50 (flat, dark, featureless: a black screen matches every other
  black screen) are ignored.
* At least 2 matching frames, and ≥ 80 % of the shorter side's frames.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import FrameHash, MediaInfo, Original

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

PDQ_THRESHOLD = 31
MIN_QUALITY = 50
MIN_MATCH = 0.8
MIN_FRAMES = 2


@dataclass
class Member:
    original: str
    width: int | None
    height: int | None
    duration: float | None
    bitrate: int | None
    size: int
    match_to_best: float | None = None  # share of this member's frames found in the best one
    best_to_member: float | None = None
    median_distance: float | None = None

    def quality_key(self) -> tuple[int, int, float, int]:
        return ((self.width or 0) * (self.height or 0), self.bitrate or 0,
                self.duration or 0.0, self.size)


@dataclass
class Group:
    best: str
    members: list[Member] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"best": self.best, "members": [vars(m) for m in self.members]}

    def to_text(self, number: int) -> str:
        """What `strongroom dupes` prints for group `number`: the best copy, then each member
        with its resolution, length and how well it matches the best."""
        lines = [f"group {number}: best {self.best}"]
        for m in self.members:
            res = f"{m.width}×{m.height}" if m.width else "?"
            how = ("best" if m.original == self.best else
                   f"{(m.match_to_best or 0):.0%} of its frames in best, "
                   f"{(m.best_to_member or 0):.0%} back, median distance {m.median_distance}")
            lines.append(f"  {m.original[:16]}…  {res}  {m.duration or 0:.1f} s  ({how})")
        return "\n".join(lines)


def packed(hex_hashes: list[str]) -> npt.NDArray[np.uint8]:
    import numpy as np

    if not hex_hashes:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hex_hashes)), dtype=np.uint8).reshape(-1, 32)


class FrameIndex:
    """All usable frame hashes of the vault in one faiss binary index."""

    def __init__(self, by_video: dict[str, list[str]]) -> None:
        import faiss
        import numpy as np

        self.videos = sorted(by_video)
        self.position = {v: i for i, v in enumerate(self.videos)}
        self.codes = {v: packed(by_video[v]) for v in self.videos}
        self.owner = np.concatenate(
            [np.full(len(self.codes[v]), i, dtype=np.int64) for i, v in enumerate(self.videos)]
        ) if self.videos else np.zeros(0, dtype=np.int64)
        self.index = faiss.IndexBinaryFlat(256)
        if self.videos:
            self.index.add(np.concatenate([self.codes[v] for v in self.videos]))

    def matches(self, video: str) -> dict[int, tuple[int, list[int]]]:
        """Other video index → (how many of `video`'s frames match it, their best distances)."""
        q = self.codes[video]
        if len(q) == 0:
            return {}
        import faiss

        # One thread: faiss's default OpenMP threads make a single lookup 10× slower as soon
        # as the machine is busy (measured in benchmarks/pipeline.py).
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            lims, dist, ids = self.index.range_search(q, PDQ_THRESHOLD + 1)
        finally:
            faiss.omp_set_num_threads(threads)
        me = self.position[video]
        found: dict[int, dict[int, int]] = defaultdict(dict)  # other → frame → best dist
        for f in range(len(q)):
            for j in range(lims[f], lims[f + 1]):
                other = int(self.owner[ids[j]])
                if other != me:
                    d = int(dist[j])
                    if d < found[other].get(f, 999):
                        found[other][f] = d
        return {o: (len(fr), sorted(fr.values())) for o, fr in found.items()}


def near_duplicate_groups(session: Session) -> list[Group]:
    by_video: dict[str, list[str]] = defaultdict(list)
    for sha, pdq in session.execute(select(FrameHash.original_sha256, FrameHash.pdq)
                                    .where(FrameHash.quality >= MIN_QUALITY)
                                    .order_by(FrameHash.original_sha256, FrameHash.t)):
        by_video[sha].append(pdq)
    index = FrameIndex(dict(by_video))
    share: dict[tuple[str, str], float] = {}
    dists: dict[tuple[str, str], list[int]] = {}
    parent = {v: v for v in index.videos}

    def find(v: str) -> str:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for v in index.videos:
        n = len(index.codes[v])
        for o, (hits, ds) in index.matches(v).items():
            other = index.videos[o]
            share[(v, other)] = hits / n
            dists[(v, other)] = ds
    for (a, b), s in share.items():
        back = share.get((b, a), 0.0)
        hits = max(round(s * len(index.codes[a])), round(back * len(index.codes[b])))
        if max(s, back) >= MIN_MATCH and hits >= MIN_FRAMES:
            parent[find(a)] = find(b)
    clusters: dict[str, list[str]] = defaultdict(list)
    for v in index.videos:
        clusters[find(v)].append(v)
    facts = {r.original_sha256: r for r in session.scalars(
        select(MediaInfo).where(MediaInfo.original_sha256.in_(index.videos)))}
    sizes: dict[str, int] = {sha: size for sha, size in session.execute(
        select(Original.sha256, Original.size).where(Original.sha256.in_(index.videos)))}
    groups = []
    for members in clusters.values():
        if len(members) < 2:
            continue
        ms = [Member(v, _f(facts, v, "width"), _f(facts, v, "height"),
                     _f(facts, v, "duration"), _f(facts, v, "bitrate"), sizes.get(v, 0))
              for v in sorted(members)]
        best = max(ms, key=Member.quality_key)
        for m in ms:
            if m is best:
                continue
            m.match_to_best = round(share.get((m.original, best.original), 0.0), 3)
            m.best_to_member = round(share.get((best.original, m.original), 0.0), 3)
            ds = dists.get((m.original, best.original)) or []
            m.median_distance = float(ds[len(ds) // 2]) if ds else None
        ms.sort(key=lambda m: (m is not best, [-x for x in m.quality_key()]))
        groups.append(Group(best=best.original, members=ms))
    groups.sort(key=lambda g: g.best)
    return groups


def _f(facts: dict[str, MediaInfo], sha: str, attr: str) -> Any:
    row = facts.get(sha)
    return getattr(row, attr) if row is not None else None
