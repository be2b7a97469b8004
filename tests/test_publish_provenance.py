"""C2PA provenance of a published clip (issue 16): signed offline with a private CA chain made
here with `cryptography`, embedded by the real c2pa library into a real MP4 made by ffmpeg,
and read back by the same library's validator."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from c2pa_fixtures import make_chain
from strongroom.errors import StrongroomError
from strongroom.publish.provenance import Signing, read, sign

ORIGINAL = hashlib.sha256(b"the original CCTV export").hexdigest()
SPEC = hashlib.sha256(b"redaction spec v3").hexdigest()
DESCRIPTION = "faces hidden on every frame; voices masked"


@dataclass(frozen=True)
class Credentials:
    signing: Signing
    root: Path


def make_ca(folder: Path, name: str) -> Credentials:
    """A root CA and a leaf signed by it (`c2pa_fixtures.make_chain`), as a `Signing`."""
    chain = make_chain(folder, name)
    return Credentials(Signing(chain.chain, chain.key), chain.root)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    return make_ca(tmp_path_factory.mktemp("pki") / "org", "Strongroom Test Org")


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    return make_ca(tmp_path_factory.mktemp("pki") / "other", "Someone Else")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real H.264 MP4, as the redaction step writes them (moov first)."""
    out = tmp_path_factory.mktemp("media") / "redacted.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=10", "-t", "2", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out)], check=True)
    return out


def facts(**over: Any) -> dict[str, Any]:
    return {"original_sha256": ORIGINAL, "spec_sha256": SPEC, "spec_version": 3,
            "publication": 17, "organisation": "Strongroom Test Org",
            "description": DESCRIPTION, **over}


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, clip: Path,
           org: Credentials) -> tuple[Path, dict[str, Any]]:
    dst = tmp_path_factory.mktemp("out") / "publication-17.mp4"
    return dst, sign(clip, dst, signing=org.signing, **facts())


def boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """Top-level ISO BMFF boxes: type -> (offset, size)."""
    found, at = {}, 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        found[kind.decode("latin-1")] = (at, size)
        at += size
    return found


def manifest_store(path: Path) -> dict[str, Any]:
    import c2pa  # type: ignore[import-untyped]

    with open(path, "rb") as f, c2pa.Reader("video/mp4", f) as reader:
        return json.loads(reader.json())  # type: ignore[no-any-return]


def test_signing_then_reading_round_trips_the_facts_and_the_actions_in_order(
        signed: tuple[Path, dict[str, Any]]) -> None:
    dst, made = signed
    got = read(dst)
    assert got["signed"] and got["valid"]
    assert got["trusted"] is None  # no anchors given: trust not judged
    assert got["problems"] == []
    assert got["original_sha256"] == ORIGINAL
    assert got["redaction_spec_sha256"] == SPEC
    assert (got["spec_version"], got["publication"]) == (3, 17)
    assert got["organisation"] == "Strongroom Test Org"
    assert got["actions"] == ["c2pa.opened", "c2pa.edited"]
    assert got["signer"] == "Strongroom Test Org"
    assert got["manifest_label"] == made["manifest_label"]
    data = dst.read_bytes()
    assert made["sha256"] == hashlib.sha256(data).hexdigest()
    assert made["size"] == len(data)

    manifest = manifest_store(dst)
    active = manifest["manifests"][manifest["active_manifest"]]
    assert active["claim_generator_info"][0]["name"] == "Strongroom"
    assert active["title"] == dst.name
    actions = next(a for a in active["assertions"] if a["label"].startswith("c2pa.actions"))
    edited = actions["data"]["actions"][1]
    assert edited["description"] == DESCRIPTION
    assert edited["softwareAgent"]["name"] == "Strongroom"
    opened = actions["data"]["actions"][0]
    assert len(opened["parameters"]["ingredients"]) == 1  # points at the original


def test_signer_is_trusted_under_its_own_root_and_not_under_an_unrelated_one(
        signed: tuple[Path, dict[str, Any]], org: Credentials, other: Credentials) -> None:
    dst, _ = signed
    ours = read(dst, trust_anchors=org.root)
    assert ours["valid"] and ours["trusted"] is True and ours["problems"] == []
    theirs = read(dst, trust_anchors=other.root)
    assert theirs["valid"] and theirs["trusted"] is False
    assert any(p.startswith("signingCredential.untrusted") for p in theirs["problems"])


def test_the_original_is_referenced_by_its_hash_not_embedded(
        signed: tuple[Path, dict[str, Any]], clip: Path) -> None:
    dst, _ = signed
    assert 0 < dst.stat().st_size - clip.stat().st_size < 200_000
    manifest = manifest_store(dst)
    assert len(manifest["manifests"]) == 1  # no ingredient manifest carried along
    active = manifest["manifests"][manifest["active_manifest"]]
    assert "thumbnail" not in active
    [ingredient] = active["ingredients"]
    assert ingredient["title"] == "original"
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["metadata"]["org.strongroom.sha256"] == ORIGINAL
    for leak in ("thumbnail", "data", "manifest_data", "format", "instance_id"):
        assert leak not in ingredient


def test_the_signed_file_still_plays_the_same_frames(
        signed: tuple[Path, dict[str, Any]], clip: Path) -> None:
    import av

    def frames(path: Path) -> list[str]:
        with av.open(str(path)) as c:
            return [hashlib.sha256(f.to_ndarray(format="rgb24").tobytes()).hexdigest()
                    for f in c.decode(video=0)]

    dst, _ = signed
    assert frames(dst) == frames(clip)
    assert len(frames(clip)) == 20


def test_one_byte_changed_in_the_video_payload_makes_it_invalid(
        signed: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    dst, _ = signed
    data = bytearray(dst.read_bytes())
    offset, size = boxes(bytes(data))["mdat"]
    data[offset + size // 2] ^= 0x01
    changed = tmp_path / "changed.mp4"
    changed.write_bytes(data)
    got = read(changed)
    assert got["signed"] and not got["valid"]
    assert any(p.startswith("assertion.bmffHash.mismatch") for p in got["problems"])
    assert got["original_sha256"] == ORIGINAL  # what it claims is still told


def test_an_unsigned_mp4_reads_as_not_signed(clip: Path) -> None:
    got = read(clip)
    assert got["signed"] is False and got["valid"] is False
    assert got["original_sha256"] is None and got["actions"] == [] and got["problems"] == []


def _missing_key(org: Credentials, other: Credentials, clip: Path, tmp: Path
                 ) -> tuple[Path, Signing]:
    return clip, Signing(org.signing.cert_chain, tmp / "no-such-key.pem")


def _key_of_another_certificate(org: Credentials, other: Credentials, clip: Path, tmp: Path
                                ) -> tuple[Path, Signing]:
    return clip, Signing(org.signing.cert_chain, other.signing.key)


def _not_an_mp4(org: Credentials, other: Credentials, clip: Path, tmp: Path
                ) -> tuple[Path, Signing]:
    src = tmp / "notes.mp4"
    src.write_text("not a video at all\n" * 50)
    return src, org.signing


def _missing_chain(org: Credentials, other: Credentials, clip: Path, tmp: Path
                   ) -> tuple[Path, Signing]:
    return clip, Signing(tmp / "no-such-chain.pem", org.signing.key)


def _chain_without_a_certificate(org: Credentials, other: Credentials, clip: Path, tmp: Path
                                 ) -> tuple[Path, Signing]:
    chain = tmp / "chain.pem"
    chain.write_text("just some text\n")
    return clip, Signing(chain, org.signing.key)


@pytest.mark.parametrize(("case", "message"), [
    (_missing_key, r"private key .*no-such-key\.pem does not exist"),
    (_key_of_another_certificate, "does not match the certificate"),
    (_not_an_mp4, r"notes\.mp4 is not an MP4 video"),
    (_missing_chain, r"certificate chain .*no-such-chain\.pem does not exist"),
    (_chain_without_a_certificate, "holds no PEM certificate"),
])
def test_bad_credentials_or_source_are_refused_clearly_and_nothing_is_written(
        case: Any, message: str, org: Credentials, other: Credentials, clip: Path,
        tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    src, signing = case(org, other, clip, inputs)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(StrongroomError, match=message):
        sign(src, out / "publication.mp4", signing=signing, **facts())
    assert list(out.iterdir()) == []  # no dst, no partial file


def test_a_truncated_mp4_is_refused(org: Credentials, clip: Path, tmp_path: Path) -> None:
    """c2pa itself signs an MP4 cut short without a word."""
    src = tmp_path / "truncated.mp4"
    src.write_bytes(clip.read_bytes()[:3000])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(StrongroomError, match=r"truncated\.mp4 is not a complete MP4 video"):
        sign(src, out / "publication.mp4", signing=org.signing, **facts())
    assert list(out.iterdir()) == []


def test_a_signing_failure_inside_c2pa_is_a_clear_error_and_leaves_nothing_behind(
        org: Credentials, clip: Path, tmp_path: Path) -> None:
    """A time-stamp authority that cannot be reached (nothing listens on the discard port):
    the library fails in the middle of signing, after the temporary file was opened."""
    signing = Signing(org.signing.cert_chain, org.signing.key, tsa_url="http://127.0.0.1:9/")
    with pytest.raises(StrongroomError, match=r"signing .*redacted\.mp4 failed: .*127\.0\.0\.1"):
        sign(clip, tmp_path / "publication.mp4", signing=signing, **facts())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("over", "message"), [
    ({"original_sha256": "ABC"}, "original_sha256 must be 64 lower-case hex digits"),
    ({"spec_sha256": ORIGINAL.upper()}, "spec_sha256 must be 64 lower-case hex digits"),
    ({"publication": -1}, "publication must be a whole number"),
    ({"description": " "}, "description must be given"),
])
def test_bad_facts_are_refused(over: dict[str, Any], message: str, org: Credentials,
                               clip: Path, tmp_path: Path) -> None:
    with pytest.raises(StrongroomError, match=message):
        sign(clip, tmp_path / "p.mp4", signing=org.signing, **facts(**over))
    assert list(tmp_path.iterdir()) == []


def test_an_existing_dst_is_refused_and_left_alone(org: Credentials, clip: Path,
                                                   tmp_path: Path) -> None:
    dst = tmp_path / "publication.mp4"
    shutil.copyfile(clip, dst)
    before = dst.read_bytes()
    with pytest.raises(StrongroomError, match="exists; nothing is overwritten"):
        sign(clip, dst, signing=org.signing, **facts())
    assert dst.read_bytes() == before
    assert list(tmp_path.iterdir()) == [dst]


def test_an_mp4_with_its_index_at_the_end_signs_and_verifies_too(
        org: Credentials, tmp_path: Path) -> None:
    src = tmp_path / "plain.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=10", "-t", "2", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(src)], check=True)
    layout = boxes(src.read_bytes())
    assert layout["mdat"][0] < layout["moov"][0]
    dst = tmp_path / "signed.mp4"
    sign(src, dst, signing=org.signing, **facts())
    got = read(dst, trust_anchors=org.root)
    assert got["valid"] and got["trusted"] and got["original_sha256"] == ORIGINAL
