"""One Settings object, built once in `main()` and passed explicitly (no import-time globals)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the vault lives and which back-ends it uses.

    Every field can come from the environment (`STRONGROOM_DATABASE_URL=...`). The defaults are
    the laptop shape: SQLite catalogue and blobs inside the vault folder.
    """

    model_config = SettingsConfigDict(env_prefix="STRONGROOM_", extra="ignore")

    vault: Path = Path("vault")
    #: SQLAlchemy URL; empty means `sqlite:///<vault>/catalogue.db`.
    database_url: str = ""
    #: Blob store root; empty means `<vault>/blobs`. (S3 URLs arrive with the scale-out issue.)
    blob_store: str = ""
    #: Also compute SHA-512 of every original at ingest (slower; some courts ask for it).
    sha512: bool = False
    #: Files at least this large are encrypted by the `age` binary; smaller ones by pyrage in
    #: this process. pyrage holds the GIL while it encrypts, so parallel ingest workers (and
    #: their hashing threads) wait on it; a separate `age` process costs ~3 ms to start, which
    #: is what pyrage needs for about 1 MiB. (8 MiB: whole-folder ingest 199 MB/s; 1 MiB: 236.)
    age_binary_threshold: int = 1024 * 1024
    #: Parallel files during ingest.
    ingest_workers: int = 2
    #: Ingest commits in groups of at most this many files or bytes (one sync per group).
    commit_files: int = 64
    commit_bytes: int = 256 * 1024 * 1024
    #: Where the pipeline puts the plaintext ffmpeg needs (a private 0700 dir per original,
    #: removed when done); empty means the system temp dir. Prefer an encrypted or RAM disk.
    work_dir: str = ""
    #: Pipeline executor: "process" (local process pool) or "inline" (in this process, for
    #: debugging). A Dask scheduler address arrives with the scale-out issue.
    executor: str = "process"
    #: Pipeline worker processes (0: as many as CPUs).
    workers: int = 0
    #: Largest frame (width × height) a pipeline worker decodes in-process. PyAV has no memory
    #: limit of its own: one 16000×16000 frame in a 750 KB MP4 took a worker to 3.5 GB. Frames
    #: declared bigger are refused per file, before decoding; 0 means no cap. Default: 8K UHD
    #: (7680×4320); CCTV is at most 4K.
    max_pixels: int = 7680 * 4320
    #: Data-segment limit (RLIMIT_DATA, bytes) of each pipeline worker process, for files whose
    #: headers lie about their frame size: running out becomes that file's error, not a dead
    #: worker or machine. 0 means no limit. 4 GiB, the cap `media/run.py` gives ffmpeg: a
    #: 16000×16000 frame needs ~0.8 GB to decode and 1.5 GB more as RGB (measured).
    worker_memory: int = 4 * 1024**3
    #: faster-whisper model directory for the optional `transcribe` step; empty means off.
    whisper_model: str = ""

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.vault.resolve() / 'catalogue.db'}"

    def resolved_blob_root(self) -> Path:
        return Path(self.blob_store) if self.blob_store else self.vault / "blobs"
