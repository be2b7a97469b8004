"""The review step's safe copies and the chunked proxies the review app streams by byte range.

One vault per module, processed by the real pipeline (process pool, sandboxed ffmpeg): a DVR
clip with sound, and a 720p clip with scikit-image's astronaut portrait in it (a face a
detector finds), encoded at a high bitrate so that its proxy spans several 1 MiB chunks.
Tests read what the pipeline left through the vault's door, and damage copies of the vault.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from conftest import Template, cli, open_vault
from strongroom.catalogue.models import CustodyEvent, Derivative, DerivativeChunk
from strongroom.errors import IntegrityError, RangeNotSatisfiable, StrongroomError
from strongroom.ingest import ingest
from strongroom.pipeline.runner import process
from strongroom.testmedia import ClipSpec, generate_clip
from strongroom.vault import Vault
from strongroom.vault.chunks import CHUNK_SIZE

STEPS = ["probe", "proxy", "review"]


@dataclass
class Built:
    path: Path
    template: Template
    dvr: str  # sha256 of the DVR clip (with sound)
    face: str  # sha256 of the astronaut clip (several chunks)

    def vault(self) -> Vault:
        return open_vault(self.path, self.template.keys)


def face_clip(dest: Path) -> Path:
    """5 s of 1280×720 H.264 + AAC: the astronaut over testsrc2, with film grain and a low CRF
    so that its remuxed proxy spans several chunks."""
    from PIL import Image
    from skimage import data

    still = dest.parent / "astronaut.png"
    Image.fromarray(data.astronaut()).save(still)
    subprocess.run([
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-loop", "1", "-i", str(still),
        "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-filter_complex", "[1:v]noise=alls=12:allf=t[bg];[bg][0:v]overlay=380:100[v]",
        "-map", "[v]", "-map", "2:a", "-t", "5", "-c:v", "libx264", "-preset", "ultrafast",
        "-crf", "16", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", str(dest)],
        check=True)
    return dest


@pytest.fixture(scope="module")
def built(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("review")
    usb = root / "usb"
    usb.mkdir()
    generate_clip(ClipSpec(name="cam05.mp4", duration=6, camera_label="КАМ 05 ШИЗО",
                           clock_start=datetime(2021, 2, 3, 4, 5, 6), audio=True), usb)
    face_clip(usb / "face.mp4")
    path = root / "vault"
    shutil.copytree(template.path, path)
    work = root / "work"
    work.mkdir()
    with open_vault(path, template.keys, work_dir=str(work)) as v:
        ingest(v, usb, "test clips")
        report = process(v, steps=STEPS, workers=2, executor="process")
        assert report.errors == [], report.errors
        shas = {p: v.find_original(hashlib.sha256((usb / p).read_bytes()).hexdigest()).sha256
                for p in ("cam05.mp4", "face.mp4")}
    assert list(work.iterdir()) == [], "plaintext work dirs must be gone after processing"
    return Built(path, template, shas["cam05.mp4"], shas["face.mp4"])


def derivative(v: Vault, sha: str, kind: str) -> Derivative:
    with v.catalogue.read() as s:
        row = s.scalars(select(Derivative).where(Derivative.original_sha256 == sha,
                                                 Derivative.kind == kind)
                        .order_by(Derivative.id.desc())).first()
    assert row is not None, f"no {kind} of {sha}"
    return row


def chunks_of(v: Vault, row: Derivative) -> list[DerivativeChunk]:
    with v.catalogue.read() as s:
        return list(s.scalars(select(DerivativeChunk).where(
            DerivativeChunk.derivative_id == row.id).order_by(DerivativeChunk.idx)))


def whole(v: Vault, row: Derivative) -> bytes:
    return b"".join(v.read_range(row, 0, v.derivative_size(row)))


def probe_json(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                          "-show_format", str(path)], capture_output=True, check=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def frame(video: Path, t: float, height: int | None = None, fmt: str = "gray"
          ) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """One frame at `t` as raw pixels (`gray`: H×W; `yuv420p`: the three planes flat)."""
    info = probe_json(video)["streams"][0]
    w, h = int(info["width"]), int(info["height"])
    scale = []
    if height is not None:
        w, h = round(w * height / h / 2) * 2, height
        scale = ["-vf", f"scale={w}:{h}:flags=area"]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", str(t), "-i", str(video),
                          "-frames:v", "1", *scale, "-f", "rawvideo", "-pix_fmt", fmt, "-"],
                         capture_output=True, check=True).stdout
    arr = np.frombuffer(raw, dtype=np.uint8)
    return arr.reshape(h, w) if fmt == "gray" else arr


def high_frequency(img: np.ndarray[Any, np.dtype[np.uint8]]) -> float:
    """Variance of the Laplacian: the energy of edges and fine detail."""
    import cv2

    return float(cv2.Laplacian(img.astype(np.float64), cv2.CV_64F).var())


# -- the safe copies ----------------------------------------------------------------------------
def test_the_safe_proxy_is_blurred_greyscale_small_faststart_and_has_no_audio(
        built: Built, tmp_path: Path) -> None:
    with built.vault() as v:
        for sha in (built.dvr, built.face):
            safe, clear = derivative(v, sha, "safe_proxy"), derivative(v, sha, "proxy")
            (tmp_path / "safe.mp4").write_bytes(data := whole(v, safe))
            (tmp_path / "clear.mp4").write_bytes(whole(v, clear))
            assert data.index(b"moov") < data.index(b"mdat"), "faststart: the index first"
            streams = probe_json(tmp_path / "safe.mp4")["streams"]
            assert [s["codec_type"] for s in streams] == ["video"], "no audio track at all"
            video = streams[0]
            assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
            assert int(video["height"]) <= 480
            assert any(s["codec_type"] == "audio" for s in
                       probe_json(tmp_path / "clear.mp4")["streams"]), "the clear one has sound"
            planes = frame(tmp_path / "safe.mp4", 1.0, fmt="yuv420p")
            h, w = int(video["height"]), int(video["width"])
            chroma = planes[w * h:]
            assert int(np.abs(chroma.astype(int) - 128).max()) <= 2, "chroma planes are flat"
            safe_px = frame(tmp_path / "safe.mp4", 1.0)
            clear_px = frame(tmp_path / "clear.mp4", 1.0, height=h)
            assert safe_px.shape == clear_px.shape
            ratio = high_frequency(safe_px) / high_frequency(clear_px)
            assert ratio < 0.02, f"{sha[:12]}: safe frame keeps {ratio:.1%} of the detail"
            assert safe.meta == {"blur_sigma": 16.0, "height": 480, "audio": False}


def test_safe_poster_and_thumbnail_are_blurred_greyscale_stills(built: Built) -> None:
    import io

    from PIL import Image

    with built.vault() as v:
        for sha in (built.dvr, built.face):
            poster = Image.open(io.BytesIO(v.read_derivative_bytes(
                derivative(v, sha, "safe_poster"))))
            thumb = Image.open(io.BytesIO(v.read_derivative_bytes(
                derivative(v, sha, "safe_thumb"))))
            clear = Image.open(io.BytesIO(v.read_derivative_bytes(
                derivative(v, sha, "poster")))).convert("L")
            for img in (poster, thumb):
                rgb = np.asarray(img.convert("RGB"), dtype=int)
                assert img.mode == "L" or np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 2
            assert poster.height <= 360 and thumb.width == 160
            clear_small = np.asarray(clear.resize(poster.size, Image.Resampling.BOX))
            ratio = high_frequency(np.asarray(poster.convert("L"))) / high_frequency(clear_small)
            assert ratio < 0.03, f"{sha[:12]}: safe poster keeps {ratio:.1%} of the detail"


def _faces(img: np.ndarray[Any, np.dtype[np.uint8]]) -> list[tuple[int, int, int, int]]:
    """Faces found by the LBP cascade scikit-image ships (OpenCV's, trained on frontal
    faces), as (row, col, height, width)."""
    from skimage import data as skdata
    from skimage.feature import Cascade

    xml = Path(skdata.__file__).parent / "lbpcascade_frontalface_opencv.xml"
    found = Cascade(str(xml)).detect_multi_scale(
        img=img / 255.0, scale_factor=1.2, step_ratio=1, min_size=(24, 24),
        max_size=(200, 200))
    return [(f["r"], f["c"], f["height"], f["width"]) for f in found]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    rows = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    cols = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = rows * cols
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_a_face_found_in_the_clear_proxy_is_not_found_in_the_safe_one(
        built: Built, tmp_path: Path) -> None:
    with built.vault() as v:
        (tmp_path / "safe.mp4").write_bytes(whole(v, derivative(v, built.face, "safe_proxy")))
        (tmp_path / "clear.mp4").write_bytes(whole(v, derivative(v, built.face, "proxy")))
    safe = frame(tmp_path / "safe.mp4", 2.0)
    clear = frame(tmp_path / "clear.mp4", 2.0, height=safe.shape[0])
    # the astronaut's face: at 480 lines, near row 115, column 370 (62 px wide)
    faces = [f for f in _faces(clear) if 60 < f[0] < 170 and 300 < f[1] < 440]
    assert faces, "the detector must find the face in the clear frame"
    assert not [f for f in _faces(safe) if _overlap(f, faces[0]) > 0.2]


# -- chunked storage, read by range -------------------------------------------------------------
def test_read_range_gives_exactly_the_plaintext_bytes_of_any_range(built: Built) -> None:
    with built.vault() as v:
        row = derivative(v, built.face, "proxy")
        chunks = chunks_of(v, row)
        assert len(chunks) >= 3, "the face clip's proxy must span several chunks"
        assert [c.size for c in chunks[:-1]] == [CHUNK_SIZE] * (len(chunks) - 1)
        assert row.blob_name == chunks[0].blob_name
        size = v.derivative_size(row)
        assert size == row.size == sum(c.size for c in chunks)
        plain = b"".join(v.read_range(row, 0, size))
        assert hashlib.sha256(plain).hexdigest() == row.sha256
        # what the door hands out whole (a view, an export) is the same bytes
        got: list[bytes] = []
        with v.open_derivative(row, purpose="viewed", to="test") as opened:
            opened.copy_to(got.append)
        assert b"".join(got) == plain
        C = CHUNK_SIZE
        ranges = [(0, 1), (0, C), (C, 2 * C), (C - 1, C + 1), (5, 17), (C + 3, 2 * C - 3),
                  (0, size), (size - 1, size), (C // 2, size), (2 * C, size)]
        rng = random.Random(14)
        for _ in range(40):
            a = rng.randrange(size)
            ranges.append((a, rng.randint(a + 1, min(size, a + 3 * C))))
        for start, end in ranges:
            assert b"".join(v.read_range(row, start, end)) == plain[start:end], (start, end)
        # a small one stays one blob, and reads by range too
        poster = derivative(v, built.face, "safe_poster")
        assert chunks_of(v, poster) == []
        data = v.read_derivative_bytes(poster)
        assert b"".join(v.read_range(poster, 10, 100)) == data[10:100]


def test_read_range_refuses_ranges_outside_the_file_and_rows_not_in_the_catalogue(
        built: Built) -> None:
    with built.vault() as v:
        row = derivative(v, built.face, "proxy")
        size = v.derivative_size(row)
        for start, end in [(-1, 10), (0, size + 1), (size, size + 1), (10, 10), (20, 10)]:
            with pytest.raises(RangeNotSatisfiable, match="not inside"):
                v.read_range(row, start, end)
        forged = Derivative(id=row.id, original_sha256=row.original_sha256, kind=row.kind,
                            sha256="0" * 64, size=row.size, blob_name=row.blob_name)
        with pytest.raises(StrongroomError, match="in the catalogue"):
            v.read_range(forged, 0, 1)


def test_read_range_records_no_custody_event(built: Built) -> None:
    with built.vault() as v:
        with v.catalogue.read() as s:
            before = s.scalar(select(CustodyEvent.seq).order_by(CustodyEvent.seq.desc()))
        row = derivative(v, built.face, "safe_proxy")
        b"".join(v.read_range(row, 0, v.derivative_size(row)))
        v.read_derivative_bytes(derivative(v, built.face, "safe_thumb"))
        with v.catalogue.read() as s:
            after = s.scalar(select(CustodyEvent.seq).order_by(CustodyEvent.seq.desc()))
    assert after == before


def test_the_derived_event_covers_every_chunk(built: Built) -> None:
    from strongroom.catalogue.evidence import chunks_digest

    with built.vault() as v:
        row = derivative(v, built.face, "proxy")
        with v.catalogue.read() as s:
            events = [json.loads(e.details) for e in s.scalars(select(CustodyEvent).where(
                CustodyEvent.action == "derived",
                CustodyEvent.subject == f"original:{built.face}"))]
        ev = next(e for e in events if e["derivative"] == row.sha256 and e["kind"] == "proxy")
        chunks = chunks_of(v, row)
    assert ev["chunks"] == {"count": len(chunks), "chunk_size": CHUNK_SIZE,
                            "list_sha256": chunks_digest(chunks)}
    assert ev["blob"] == chunks[0].blob_name


def test_verify_checks_every_chunk_and_finds_no_orphan_blobs(built: Built) -> None:
    r = cli("verify", built.path, "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0, report
    assert report["warnings"] == [], "no chunk may look like a blob the catalogue lost"


def _copy(built: Built, tmp_path: Path) -> Built:
    path = tmp_path / "vault"
    shutil.copytree(built.path, path)
    return Built(path, built.template, built.dvr, built.face)


def test_a_flipped_byte_in_one_chunk_fails_its_reads_and_verify_names_it(
        built: Built, tmp_path: Path) -> None:
    copy = _copy(built, tmp_path)
    with copy.vault() as v:
        row = derivative(v, copy.face, "proxy")
        chunks = chunks_of(v, row)
        blob = copy.path / "blobs" / chunks[1].blob_name[:2] / chunks[1].blob_name
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0x01
        blob.chmod(0o600)
        blob.write_bytes(bytes(data))
        C = CHUNK_SIZE
        assert b"".join(v.read_range(row, 0, C)), "chunk 0 alone still reads"
        with pytest.raises(IntegrityError, match="chunk 1"):
            b"".join(v.read_range(row, C - 10, C + 10))
        with pytest.raises(IntegrityError, match="chunk 1"):
            b"".join(v.read_range(row, 0, row.size))
        assert v.read_derivative_bytes(derivative(v, copy.face, "safe_thumb"))
    r = cli("verify", copy.path, "--json")
    assert r.returncode == 1
    problems = json.loads(r.stdout)["problems"]
    assert [(p["check"], p["subject"]) for p in problems] == [
        ("fixity", f"derivative {row.sha256} (proxy of {row.original_sha256}), chunk 1")]


def test_verify_catches_an_edited_or_deleted_chunk_row(built: Built, tmp_path: Path) -> None:
    copy = _copy(built, tmp_path)
    with copy.vault() as v:
        row = derivative(v, copy.face, "proxy")
        with v.write() as s:
            c = s.get(DerivativeChunk, (row.id, 2))
            assert c is not None
            c.sha256 = "f" * 64
    r = cli("verify", copy.path, "--json")
    assert r.returncode == 1
    problems = json.loads(r.stdout)["problems"]
    assert {p["check"] for p in problems} == {"catalogue", "fixity"}
    assert any(p["check"] == "catalogue" and row.sha256 in p["subject"] for p in problems)
    with copy.vault() as v, v.write() as s:
        s.query(DerivativeChunk).filter(DerivativeChunk.derivative_id == row.id).delete()
    r = cli("verify", copy.path, "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 1
    assert all(p["check"] == "catalogue" for p in report["problems"]), report["problems"]
    assert any("not in the catalogue" in w for w in report["warnings"])


# -- the pipeline around it ---------------------------------------------------------------------
def test_process_again_is_idempotent_and_a_version_bump_remakes_the_safe_copies(
        built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.pipeline.steps.review import ReviewStep

    copy = _copy(built, tmp_path)
    with copy.vault() as v:
        again = process(v, steps=STEPS, executor="inline")
        assert again.tasks == 0 and again.derivatives == 0
        monkeypatch.setattr(ReviewStep, "version", "2")
        bumped = process(v, steps=STEPS, executor="inline")
        assert bumped.ran == {"review": 2} and bumped.derivatives == 6
        safe = derivative(v, copy.face, "safe_proxy")
        assert safe.step_version == "2" and len(chunks_of(v, safe)) >= 1
        assert b"".join(v.read_range(safe, 0, safe.size))[4:8] == b"ftyp"
    r = cli("verify", copy.path, "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["warnings"] == [], report


def test_no_plaintext_of_a_chunk_is_written_to_disk_by_read_range(
        built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """read_range decrypts in memory: nothing is created under the temp dir while it runs."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    with built.vault() as v:
        row = derivative(v, built.face, "proxy")
        for _ in v.read_range(row, 0, row.size):
            assert os.listdir(scratch) == []
