"""Clips with real faces moving over a fixed camera's scene, for the publication tests, the
benchmark and the demo: the only real faces used are those of photographs a package ships
(scikit-image's `astronaut`), never footage of people.

`faces_clip` pastes the astronaut's head (and its mirror image, a second person) over a
static photograph, moving across the frame and growing or shrinking, with sensor noise, a
night look if asked (greyscale, low contrast) and a low-bitrate H.264 encode; it returns where
each face is on each frame (`truth`: the face itself, brow to chin, not the pasted square), so
that a test can ask whether every face was covered on every frame.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: The astronaut photograph's head with hair (x0, y0, x1, y1), and the face inside it.
HEAD = (150, 20, 300, 210)
FACE = (178, 55, 272, 182)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class FacesClip:
    path: Path
    fps: int
    size: tuple[int, int]
    truth: list[list[Box]]  # per frame, every face on it
    #: per frame and face: whether a head pasted later (in front) overlaps it, so that part
    #: of its box shows the other head, not this face
    occluded: list[list[bool]]
    #: per frame, each pasted head's square (in paste order: a later one is in front)
    heads: list[list[Box]]


def _head() -> NDArray[np.uint8]:
    import numpy as np
    from skimage import data

    img = np.asarray(data.astronaut())  # type: ignore[no-untyped-call]
    x0, y0, x1, y1 = HEAD
    return np.ascontiguousarray(img[y0:y1, x0:x1])


def _scene(name: str, size: tuple[int, int], night: bool) -> NDArray[np.uint8]:
    import cv2
    import numpy as np

    from strongroom.cctv import _photo

    scene = cv2.resize(_photo(name), size, interpolation=cv2.INTER_AREA)
    if night:
        grey = cv2.cvtColor(scene, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grey = 40 + grey * 0.45
        scene = np.repeat(grey[:, :, None], 3, axis=2).astype(np.uint8)
    out: NDArray[np.uint8] = np.asarray(scene, dtype=np.uint8)
    return out


def faces_clip(dest: Path, *, seed: int = 1, seconds: float = 4.0, fps: int = 25,
               size: tuple[int, int] = (768, 576), faces: int = 2,
               face_px: tuple[int, int] = (40, 90), background: str = "brick",
               night: bool = False, crf: int = 30, audio: bool = False) -> FacesClip:
    """Write the clip to `dest` (an .mp4) and return where its faces are. Each face's width
    goes from one end of `face_px` to the other over the clip while it crosses the frame."""
    import cv2
    import numpy as np
    from PIL import Image  # noqa: F401 - skimage's data loader needs it

    rng = random.Random(seed)
    head = _head()
    scene = _scene(background, size, night)
    w, h = size
    n = max(1, round(seconds * fps))
    paths = []
    for k in range(faces):
        x_from, x_to = rng.uniform(0.05, 0.35) * w, rng.uniform(0.55, 0.85) * w
        if k % 2:
            x_from, x_to = x_to, x_from
        y_from, y_to = rng.uniform(0.2, 0.6) * h, rng.uniform(0.2, 0.6) * h
        a, b = face_px if k % 2 == 0 else face_px[::-1]
        paths.append((x_from, x_to, y_from, y_to, a, b, k % 2 == 1))
    noise = np.random.default_rng(seed)
    truth: list[list[Box]] = []
    occluded: list[list[bool]] = []
    all_heads: list[list[Box]] = []
    hx0, hy0, hx1, hy1 = HEAD
    fx0, fy0, fx1, fy1 = FACE
    video = dest.with_suffix(".video.mp4") if audio else dest
    import av

    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for i in range(n):
            u = i / max(1, n - 1)
            frame = scene.copy()
            boxes: list[Box] = []
            heads: list[Box] = []
            for x_from, x_to, y_from, y_to, a, b, mirror in paths:
                face_w = a + (b - a) * u
                s = face_w / (fx1 - fx0)
                pw, ph = max(2, round((hx1 - hx0) * s)), max(2, round((hy1 - hy0) * s))
                patch = cv2.resize(head[:, ::-1] if mirror else head, (pw, ph),
                                   interpolation=cv2.INTER_AREA)
                if night:
                    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
                    patch = np.repeat((40 + grey * 0.45)[:, :, None], 3, axis=2).astype(np.uint8)
                cx, cy = x_from + (x_to - x_from) * u, y_from + (y_to - y_from) * u
                px, py = round(cx - pw / 2), round(cy - ph / 2)
                sx0, sy0 = max(0, -px), max(0, -py)
                dx0, dy0 = max(0, px), max(0, py)
                dx1, dy1 = min(w, px + pw), min(h, py + ph)
                if dx1 <= dx0 or dy1 <= dy0:
                    continue
                frame[dy0:dy1, dx0:dx1] = patch[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0]
                # the face inside the pasted head (mirrored: its x measured from the right)
                ax0 = (hx1 - fx1 if mirror else fx0 - hx0) * s
                ax1 = (hx1 - fx0 if mirror else fx1 - hx0) * s
                boxes.append((px + ax0, py + (fy0 - hy0) * s, px + ax1, py + (fy1 - hy0) * s))
                heads.append((px, py, px + pw, py + ph))
            grain = noise.normal(0, 6, frame.shape)
            frame = np.clip(frame.astype(np.float32) + grain, 0, 255).astype(np.uint8)
            truth.append(boxes)
            all_heads.append(heads)
            occluded.append([any(min(b[2], h[2]) > max(b[0], h[0])
                                 and min(b[3], h[3]) > max(b[1], h[1]) for h in heads[k + 1:])
                             for k, b in enumerate(boxes)])
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = i
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    if audio:
        from strongroom.media.run import run_tool, which

        run_tool([which("ffmpeg"), "-nostdin", "-v", "error", "-y", "-i", str(video), "-f",
                  "lavfi", "-i", f"sine=frequency=220:duration={n / fps:.3f}", "-map", "0:v",
                  "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(dest)],
                 timeout=120, what="adding a tone")
        video.unlink()
    return FacesClip(dest, fps, size, truth, occluded, all_heads)
