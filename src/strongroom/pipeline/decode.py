"""The shared decode pass of one original, run in the sandbox (`media/sandbox.py`), and what
crosses back to the worker.

The worker sends the frame-consuming jobs in (pickled: the child's starting state is the
worker's to trust). The child runs `decode_pass` feeding them, then finishes every job whose
`finish` needs nothing but its frames — keyframes (its JPEGs and contact sheet), scenes,
perceptual hashes — and hands back JSON and the files those steps made. A job that
`finishes_in_worker` (overlay OCR) hands back its greyscale frames as raw pixels, which the
worker reads with numpy after checking their size: never parsed, never unpickled. So the worker,
which holds the vault's identity, parses nothing a crafted file controls except JSON.

A crash, hang or memory bomb in libavcodec ends the child, not the worker: the whole pass
becomes one clear error for each frame-consuming step of that original, and the batch goes on.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.errors import MediaError
from strongroom.media import sandbox
from strongroom.media.frames import PassInfo, decode_pass
from strongroom.media.run import DEFAULT_MEMORY
from strongroom.pipeline.step import Context, Derived, Job, StepResult

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Wall-clock budget of one decode pass: a fixed part plus this many seconds per second of
#: video the header declares (decoding CCTV runs at many times real time; a file that decodes
#: slower than half real time is stuck or hostile), the declared length counted up to 12 h (a
#: header may declare years).
DECODE_BASE_S = 120.0
DECODE_PER_VIDEO_S = 2.0
DECLARED_CAP_S = 12 * 3600.0
#: Sides of a frame handed back as pixels: beyond the decoder's own limit it is not a frame.
MAX_SIDE = 32768
#: Decoded pictures a decoder keeps at once (references, frame threads, our RGB copy): a frame
#: this many times over the memory budget explains a failed pass (`_memory_hint`).
FRAMES_IN_FLIGHT = 4


def decode_limits(duration: float, options: dict[str, Any]) -> sandbox.Limits:
    """The sandbox limits for decoding a clip that declares `duration` seconds. `options`
    (the worker's) may override the timeout (`decode_timeout`, seconds: tests, the fuzz
    campaign); the memory budget is the worker's (`worker_memory`), 4 GiB when that is 0."""
    timeout = float(options.get("decode_timeout") or 0) or (
        DECODE_BASE_S + DECODE_PER_VIDEO_S * min(max(duration, 0.0), DECLARED_CAP_S))
    memory = int(options.get("worker_memory") or 0) or DEFAULT_MEMORY
    return sandbox.Limits(timeout=timeout, memory=memory)


@dataclass
class Carried:
    """What came back from one sandboxed pass."""

    info: PassInfo
    results: dict[str, StepResult] = field(default_factory=dict)  # finished in the sandbox
    errors: dict[str, str] = field(default_factory=dict)  # finish failed in the sandbox
    network: str = ""


@contextlib.contextmanager
def sandboxed_pass(ctx: Context, jobs: dict[str, Job], duration: float, *, max_pixels: int,
                   limits: sandbox.Limits) -> Iterator[Carried]:
    """Run the decode pass of `ctx.path` for `jobs` in the sandbox. Jobs that finish in the
    worker have received their pixels when this yields; the others' results name files in the
    sandbox's dir, which exists until the `with` ends (seal them inside it). A failure of the
    pass as a whole is a `MediaError` (a `SandboxError` when the child died or hit a limit)."""
    with sandbox.run(_in_sandbox, str(ctx.path), ctx, jobs, duration, max_pixels,
                     limits.memory, limits=limits, base=ctx.workdir, what="decoding") as boxed:
        yield _carry_back(boxed, jobs)


def _in_sandbox(box: Path, path: str, ctx: Context, jobs: dict[str, Job], duration: float,
                max_pixels: int, memory: int) -> dict[str, Any]:
    """In the child: the pass, then each job's finish or its pixels, as JSON."""
    ctx.workdir = box  # what the steps make goes into the sandbox's own dir
    consumers = [j.consumer for j in jobs.values() if j.consumer is not None]
    try:
        info = decode_pass(Path(path), consumers, duration, max_pixels=max_pixels,
                           threads=int(ctx.options.get("decode_threads") or 0))
    except MediaError as exc:
        hint = "" if "out of memory" in str(exc) else _memory_hint(ctx, memory)
        raise MediaError(f"{exc}{hint}") from None
    ctx.decoded_duration = info.decoded_s
    out: dict[str, Any] = {}
    for name, job in jobs.items():
        try:
            if job.finishes_in_worker:
                out[name] = {"pixels": _save_pixels(box, name, job.pixels())}
            else:
                out[name] = {"result": _result_json(job.finish(), box)}
        except MemoryError:
            out[name] = {"error": f"out of memory finishing {name} in the sandbox"}
        except Exception as exc:
            from strongroom.errors import StrongroomError

            out[name] = {"error": str(exc) if isinstance(exc, StrongroomError)
                         else sandbox.describe_bug(exc)}
    return {"pass": {"frames": info.frames, "last_t": info.last_t, "error": info.error,
                     "frame_s": info.frame_s}, "jobs": out}


def _memory_hint(ctx: Context, memory: int) -> str:
    """Why a pass may have failed when the frames are big for the sandbox's memory: an
    allocation that fails in one of libavcodec's frame threads is reported as "invalid data",
    not as the ENOMEM it was (measured: an 8192×8192 frame under 128 MB, one run in two)."""
    facts = ctx.facts
    if facts is None or not facts.width or not facts.height:
        return ""
    frame = facts.width * facts.height * 3 // 2  # one YUV 4:2:0 picture
    if frame * FRAMES_IN_FLIGHT <= memory:
        return ""
    return (f" (probably out of memory: a {facts.width}×{facts.height} frame is "
            f"{frame / 1024**2:.0f} MB, the decoder holds several, and the sandbox allows "
            f"{memory / 1024**2:.0f} MB: STRONGROOM_WORKER_MEMORY)")


def _save_pixels(box: Path, name: str, frames: list[tuple[float, npt.NDArray[np.uint8]]]
                 ) -> list[list[Any]]:
    import numpy as np

    rows = []
    for i, (t, a) in enumerate(frames):
        a = np.ascontiguousarray(a, dtype=np.uint8)
        if a.ndim != 2:
            raise MediaError(f"{name}: a frame of {a.ndim} dimensions, not a greyscale picture")
        file = f"{name}-{i:04d}.gray"
        a.tofile(box / file)
        rows.append([float(t), file, int(a.shape[0]), int(a.shape[1])])
    return rows


def _result_json(res: StepResult, box: Path) -> dict[str, Any]:
    derived = []
    for d in res.derived:
        if d.path.parent != box:
            raise MediaError(f"{d.kind}: made outside the sandbox's dir")
        derived.append({"kind": d.kind, "file": d.path.name, "mime": d.mime,
                        "command": d.command, "meta": d.meta})
    return {"data": res.data, "status": res.status, "command": res.command,
            "derived": derived}


# --- back in the worker: nothing here is trusted -----------------------------------------------

def _malformed(what: str) -> sandbox.SandboxError:
    return sandbox.SandboxError(f"the decode sandbox returned a malformed {what}", "error")


def _number(v: object, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _malformed(what)
    return float(v)


def _strings(v: object, what: str) -> list[str] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _malformed(what)
    return list(v)


def _carry_back(boxed: sandbox.Boxed, jobs: dict[str, Job]) -> Carried:
    value = boxed.value
    if not isinstance(value, dict) or not isinstance(value.get("pass"), dict) \
            or not isinstance(value.get("jobs"), dict):
        raise _malformed("answer")
    p = value["pass"]
    error = p.get("error")
    if error is not None and not isinstance(error, str):
        raise _malformed("pass error")
    info = PassInfo(frames=int(_number(p.get("frames"), "frame count")),
                    last_t=_number(p.get("last_t"), "time"), error=error,
                    frame_s=_number(p.get("frame_s"), "frame length"))
    carried = Carried(info=info, network=boxed.network)
    for name, job in jobs.items():
        got = value["jobs"].get(name)
        if not isinstance(got, dict):
            raise _malformed(f"answer for {name}")
        if "error" in got:
            carried.errors[name] = str(got["error"])
        elif job.finishes_in_worker:
            job.receive_pixels(_load_pixels(boxed, got.get("pixels")))
        else:
            carried.results[name] = _result(boxed, got.get("result"), name)
    return carried


def _load_pixels(boxed: sandbox.Boxed, rows: object
                 ) -> list[tuple[float, npt.NDArray[np.uint8]]]:
    import numpy as np

    if not isinstance(rows, list):
        raise _malformed("pixel list")
    frames = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 4:
            raise _malformed("pixel row")
        t = _number(row[0], "frame time")
        h, w = row[2], row[3]
        if not all(isinstance(x, int) and 0 < x <= MAX_SIDE for x in (h, w)):
            raise _malformed("frame size")
        path = boxed.file(row[1])
        if path.stat().st_size != h * w:
            raise _malformed("frame (its size does not match its file)")
        a = np.fromfile(path, dtype=np.uint8).reshape(h, w)
        frames.append((t, a))
    return frames


def _result(boxed: sandbox.Boxed, got: object, name: str) -> StepResult:
    if not isinstance(got, dict) or not isinstance(got.get("data"), dict) \
            or got.get("status") not in ("ok", "skipped") \
            or not isinstance(got.get("derived"), list):
        raise _malformed(f"result for {name}")
    derived = []
    for d in got["derived"]:
        if not isinstance(d, dict) or not all(isinstance(d.get(k), str)
                                              for k in ("kind", "mime")) \
                or not isinstance(d.get("meta"), dict):
            raise _malformed(f"file entry of {name}")
        derived.append(Derived(kind=d["kind"], path=boxed.file(d.get("file")), mime=d["mime"],
                               command=_strings(d.get("command"), "command"), meta=d["meta"]))
    return StepResult(data=got["data"], derived=derived, status=got["status"],
                      command=_strings(got.get("command"), "command"))
