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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import DuplicateDecision, FrameHash, MediaInfo, Original
from strongroom.errors import StrongroomError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from strongroom.vault import Vault

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
    video_codec: str | None = None

    def quality_key(self) -> tuple[int, int, float, int]:
        return ((self.width or 0) * (self.height or 0), self.bitrate or 0,
                self.duration or 0.0, self.size)


@dataclass
class Group:
    best: str
    members: list[Member] = field(default_factory=list)
    #: the group's name in URLs and commands: its smallest member SHA-256, which neither a
    #: choice of best copy nor a better copy arriving changes
    key: str = ""
    #: the copy the quality ranking picks (`best` differs when a person chose another)
    automatic_best: str = ""
    best_by: str | None = None
    best_note: str | None = None
    #: a person confirmed every present member as a copy of one recording
    confirmed: bool = False
    confirmed_by: str | None = None
    confirmed_at: str | None = None
    #: members that joined since the last confirmation (so it no longer covers the group)
    unconfirmed: list[str] = field(default_factory=list)
    #: clips people split out of this group: {"original", "by", "at", "note"}
    split_out: list[dict[str, Any]] = field(default_factory=list)

    def why_best(self) -> str:
        if self.best_by is not None:
            return f"chosen by {self.best_by}" + (f": {self.best_note}" if self.best_note
                                                  else "")
        return "largest picture, then highest bitrate, longest, largest file"

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "best": self.best, "automatic_best": self.automatic_best,
                "best_chosen_by": self.best_by, "why_best": self.why_best(),
                "confirmed": self.confirmed, "confirmed_by": self.confirmed_by,
                "confirmed_at": self.confirmed_at, "unconfirmed": self.unconfirmed,
                "split_out": self.split_out, "members": [vars(m) for m in self.members]}

    def to_text(self, number: int) -> str:
        """What `strongroom dupes` prints for group `number`: the best copy, then each member
        with its resolution, length and how well it matches the best."""
        state = (f"confirmed by {self.confirmed_by}" if self.confirmed else
                 "not confirmed")
        lines = [f"group {number}: best {self.best} ({self.why_best()}; {state}; "
                 f"key {self.key[:16]}…)"]
        for m in self.members:
            res = f"{m.width}×{m.height}" if m.width else "?"
            how = ("best" if m.original == self.best else
                   f"{(m.match_to_best or 0):.0%} of its frames in best, "
                   f"{(m.best_to_member or 0):.0%} back, median distance {m.median_distance}")
            lines.append(f"  {m.original[:16]}…  {res}  {m.duration or 0:.1f} s  ({how})")
        for gone in self.split_out:
            lines.append(f"  split out: {gone['original'][:16]}… by {gone['by']}")
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


@dataclass
class Matches:
    """Which videos match which, from the frame hashes alone (the costly part: a faiss lookup
    of every frame), before any person's decision is applied."""

    videos: list[str]
    frames: dict[str, int]
    share: dict[tuple[str, str], float]  # (a, b) → share of a's frames found in b
    dists: dict[tuple[str, str], list[int]]
    #: (a, b) with a < b → (the better share of the two directions, matching frames)
    edges: dict[tuple[str, str], tuple[float, int]]


def frame_signature(session: Session) -> tuple[int, int]:
    """Changes whenever a frame hash is added, removed or rewritten (a re-run of the step
    deletes and re-adds its rows, so their ids move on): what a cached `Matches` is keyed on."""
    from sqlalchemy import func

    n, top = session.execute(select(func.count(FrameHash.id), func.max(FrameHash.id))).one()
    return int(n or 0), int(top or 0)


def find_matches(session: Session) -> Matches:
    by_video: dict[str, list[str]] = defaultdict(list)
    for sha, pdq in session.execute(select(FrameHash.original_sha256, FrameHash.pdq)
                                    .where(FrameHash.quality >= MIN_QUALITY)
                                    .order_by(FrameHash.original_sha256, FrameHash.t)):
        by_video[sha].append(pdq)
    index = FrameIndex(dict(by_video))
    share: dict[tuple[str, str], float] = {}
    dists: dict[tuple[str, str], list[int]] = {}
    for v in index.videos:
        n = len(index.codes[v])
        for o, (hits, ds) in index.matches(v).items():
            other = index.videos[o]
            share[(v, other)] = hits / n
            dists[(v, other)] = ds
    frames = {v: len(index.codes[v]) for v in index.videos}
    edges: dict[tuple[str, str], tuple[float, int]] = {}
    for (a, b), s in share.items():
        back = share.get((b, a), 0.0)
        hits = max(round(s * frames[a]), round(back * frames[b]))
        if max(s, back) >= MIN_MATCH and hits >= MIN_FRAMES:
            edges[(a, b) if a < b else (b, a)] = (max(s, back), hits)
    return Matches(index.videos, frames, share, dists, edges)


class MatchCache:
    """The last `Matches`, reused while the frame hashes are unchanged: the review app asks
    for the groups on every page, and the decisions on top cost next to nothing."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._matches: Matches | None = None

    def get(self, session: Session) -> Matches:
        key = frame_signature(session)
        with self._lock:
            if self._matches is None or key != self._key:
                self._matches, self._key = find_matches(session), key
            return self._matches


def near_duplicate_groups(session: Session, cache: MatchCache | None = None) -> list[Group]:
    """The groups, with people's decisions applied (see `DuplicateDecision`): clips a person
    split apart are never grouped together, however many new clips would link them; a person's
    choice of best copy beats the automatic one; a group is confirmed when a person confirmed
    all of its present members."""
    matches = cache.get(session) if cache is not None else find_matches(session)
    decisions = list(session.scalars(select(DuplicateDecision).order_by(DuplicateDecision.id)))
    apart: dict[str, set[str]] = defaultdict(set)
    for d in decisions:
        if d.decision == "distinct":
            for a in d.members:
                for b in d.apart or []:
                    apart[a].add(b)
                    apart[b].add(a)
    clusters = _cluster(matches, apart)
    facts = {r.original_sha256: r for r in session.scalars(
        select(MediaInfo).where(MediaInfo.original_sha256.in_(matches.videos)))}
    sizes: dict[str, int] = {sha: size for sha, size in session.execute(
        select(Original.sha256, Original.size).where(Original.sha256.in_(matches.videos)))}
    groups = []
    for members in clusters:
        ms = [Member(v, _f(facts, v, "width"), _f(facts, v, "height"),
                     _f(facts, v, "duration"), _f(facts, v, "bitrate"), sizes.get(v, 0),
                     video_codec=_f(facts, v, "video_codec"))
              for v in sorted(members)]
        groups.append(_decided(ms, matches, decisions))
    groups.sort(key=lambda g: g.best)
    return groups


def _cluster(matches: Matches, apart: dict[str, set[str]]) -> list[set[str]]:
    """Connected groups of matching videos (two or more each), never joining two clips a
    person split apart: the strongest matches join first, and a join that would put a split
    pair in one group is skipped (with no splits, plain connected components)."""
    parent = {v: v for v in matches.videos}
    members = {v: {v} for v in matches.videos}

    def find(v: str) -> str:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    order = sorted(matches.edges.items(), key=lambda e: (-e[1][0], -e[1][1], e[0]))
    for (a, b), _strength in order:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        small, large = sorted((ra, rb), key=lambda r: len(members[r]))
        if any(apart.get(v, set()) & members[large] for v in members[small]):
            continue
        parent[small] = large
        members[large] |= members.pop(small)
    return [m for m in members.values() if len(m) >= 2]


def _decided(ms: list[Member], matches: Matches, decisions: list[DuplicateDecision]) -> Group:
    """One group with its best copy (chosen by a person, else the automatic one), whether it
    is confirmed, and the clips people split out of it."""
    here = {m.original for m in ms}
    group = Group(best="", members=ms, key=min(here))
    chosen = None
    for d in decisions:
        # a confirmation or a choice speaks for a group where it still joins two clips
        if d.decision in ("confirmed", "best") and len(here & set(d.members)) >= 2:
            if d.best_sha256 in here:
                chosen = d
            if d.decision == "confirmed":
                group.confirmed = here <= set(d.members)
                group.confirmed_by, group.confirmed_at = d.decided_by, _iso(d.decided_at)
                group.unconfirmed = sorted(here - set(d.members))
        elif d.decision == "distinct" and here & set(d.apart or []):
            for sha in sorted(set(d.members) - here):
                group.split_out.append({"original": sha, "by": d.decided_by,
                                        "at": _iso(d.decided_at), "note": d.note})
    auto = max(ms, key=Member.quality_key)
    best = auto
    if chosen is not None:
        best = next(m for m in ms if m.original == chosen.best_sha256)
        group.best_by, group.best_note = chosen.decided_by, chosen.note
    group.best, group.automatic_best = best.original, auto.original
    for m in ms:
        if m is best:
            continue
        m.match_to_best = round(matches.share.get((m.original, best.original), 0.0), 3)
        m.best_to_member = round(matches.share.get((best.original, m.original), 0.0), 3)
        ds = matches.dists.get((m.original, best.original)) or []
        m.median_distance = float(ds[len(ds) // 2]) if ds else None
    ms.sort(key=lambda m: (m is not best, [-x for x in m.quality_key()], m.original))
    return group


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _f(facts: dict[str, MediaInfo], sha: str, attr: str) -> Any:
    row = facts.get(sha)
    return getattr(row, attr) if row is not None else None


# -- people's decisions ----------------------------------------------------------------------
#: what each decision says in its custody event
DECISIONS = {"confirmed": "confirmed", "best": "best copy chosen", "distinct": "split"}
MAX_NOTE = 2000


class UnknownGroup(StrongroomError):
    """No near-duplicate group holds this clip (any more)."""


def group_of(groups: list[Group], sha256: str) -> Group:
    """The group with `sha256` among its members: its key, or any member's SHA-256 (so a
    link made before the best copy or the key changed still finds the group)."""
    sha = sha256.strip().lower()
    for g in groups:
        if any(m.original == sha for m in g.members):
            return g
    raise UnknownGroup(f"no near-duplicate group holds the clip {sha[:16]}…")


@dataclass(frozen=True)
class Decision:
    """What a person decides about the group holding `group` (a member's SHA-256).

    `decision`: "confirmed" (every member is a copy of one recording; `best` or the group's
    present best is the copy to cite), "best" (`best` is the copy to cite) or "distinct"
    (`members` are not copies of the rest of the group). `seen`: the members the person was
    shown; when given, a group that changed since is refused rather than decided blind."""

    group: str
    decision: str
    best: str | None = None
    members: tuple[str, ...] = ()
    seen: tuple[str, ...] | None = None
    note: str | None = None


def decide(vault: Vault, what: Decision, *, actor: str | None = None,
           cache: MatchCache | None = None) -> dict[str, Any]:
    """Record one decision (a row and its `annotated` custody event with the person's name,
    in one transaction) and return it with the group as it now stands. Bad input stores
    nothing: an unknown group (`UnknownGroup`), a best copy or a split member that is not in
    the group, a split that would leave no member behind, a group changed since it was seen."""
    from strongroom.catalogue.cases import clean_text
    from strongroom.vault.vault import event_time

    if what.decision not in DECISIONS:
        raise StrongroomError(f"unknown decision {what.decision!r} (one of "
                              f"{', '.join(DECISIONS)})")
    note = clean_text(what.note, MAX_NOTE, "note")
    # the frame matching (seconds for a large archive) runs before the write transaction,
    # which then finds it cached unless frame hashes changed in between
    cache = cache or MatchCache()
    with vault.catalogue.read() as s:
        cache.get(s)
    with vault.write() as s:
        group = group_of(near_duplicate_groups(s, cache), what.group)
        here = [m.original for m in group.members]
        if what.seen is not None and {x.strip().lower() for x in what.seen} != set(here):
            raise StrongroomError(
                f"this group changed since you opened it (it now has {len(here)} members): "
                "reload it and decide again")
        row = DuplicateDecision(decision=what.decision, members=sorted(here), apart=None,
                                note=note, decided_by=actor or vault.actor,
                                decided_at=datetime.now(UTC))
        if what.decision in ("confirmed", "best"):
            best = (what.best or (group.best if what.decision == "confirmed" else "")
                    ).strip().lower()
            if not best:
                raise StrongroomError("choose the best copy (one of the group's members)")
            if best not in here:
                raise StrongroomError(f"the clip {best[:16]}… is not a member of this group")
            row.best_sha256 = best
        else:
            out = sorted({m.strip().lower() for m in what.members})
            if not out:
                raise StrongroomError("name the member(s) to split out of the group")
            stray = [m for m in out if m not in here]
            if stray:
                raise StrongroomError(f"the clip {stray[0][:16]}… is not a member of this "
                                      "group")
            rest = sorted(set(here) - set(out))
            if not rest:
                raise StrongroomError("a split leaves at least one member in the group: "
                                      "split out the others, not the last one")
            row.members, row.apart = out, rest
        s.add(row)
        s.flush()
        event = vault.annotate(s, "duplicate", row.id, DECISIONS[what.decision],
                               actor=actor, details={"group": group.key})
        row.decided_at = event_time(event)  # the time the log holds (not in the digest)
        recorded = {"id": row.id, "decision": row.decision, "best": row.best_sha256,
                    "members": row.members, "apart": row.apart, "note": row.note,
                    "decided_by": row.decided_by}
    stays = row.apart[0] if row.apart else here[0]
    with vault.catalogue.read() as s:
        groups = near_duplicate_groups(s, cache)
    try:
        now: dict[str, Any] | None = group_of(groups, stays).to_json()
    except UnknownGroup:
        now = None  # a split of a pair leaves no group
    return {"decision": recorded, "group": now}


def decision_view(session: Session, decision_id: int) -> Any:
    """A duplicate decision as recorded (what its custody event's digest covers)."""
    d = session.get(DuplicateDecision, decision_id)
    if d is None:
        return None
    return {"decision": d.decision, "best": d.best_sha256, "members": sorted(d.members),
            "apart": None if d.apart is None else sorted(d.apart), "note": d.note,
            "decided_by": d.decided_by}
