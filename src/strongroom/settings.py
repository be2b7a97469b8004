"""One Settings object, built once in `main()` and passed explicitly (no import-time globals).

This is the only module that reads the environment: every `STRONGROOM_*` variable is a field
below (a test walks `src/` for any other `os.environ` or `getenv`).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from strongroom.errors import StrongroomError

#: Longest STRONGROOM_ACTOR accepted (a name and a role, not a document).
MAX_ACTOR = 200
#: Environment variables no child process gets: they unlock the vault.
SECRET_VARIABLES = ("STRONGROOM_PASSPHRASE",)


class Settings(BaseSettings):
    """Where the vault lives and which back-ends it uses.

    Every field can come from the environment (`STRONGROOM_DATABASE_URL=...`). The defaults are
    the laptop shape: SQLite catalogue and blobs inside the vault folder.
    """

    model_config = SettingsConfigDict(env_prefix="STRONGROOM_", extra="ignore")

    vault: Path = Path("vault")
    #: SQLAlchemy URL; empty means `sqlite:///<vault>/catalogue.db`.
    database_url: str = ""
    #: Where the blobs (age ciphertext) live: empty means `<vault>/blobs`; a folder (or
    #: `file:///folder`); or `s3://bucket/prefix` of an S3-compatible service
    #: (`vault/s3blobs.py`), whose credentials come from the standard `AWS_*` variables.
    blob_store: str = ""
    #: The S3 endpoint of a service that is not AWS (MinIO, Ceph, Garage, moto):
    #: `http://127.0.0.1:9000`. Empty: AWS's own.
    s3_endpoint_url: str = ""
    #: Also compute SHA-512 of every original at ingest (slower; some courts ask for it).
    sha512: bool = False
    #: Files at least this large are encrypted by the `age` binary; smaller ones by pyrage in
    #: this process. pyrage holds the GIL while it encrypts, so parallel ingest workers (and
    #: their hashing threads) wait on it; a separate `age` process costs ~3 ms to start, which
    #: is what pyrage needs for about 1 MiB. (8 MiB: whole-folder ingest 199 MB/s; 1 MiB: 236.)
    age_binary_threshold: int = 1024 * 1024
    #: Parallel files during ingest.
    ingest_workers: int = Field(default=2, ge=1)
    #: Ingest commits in groups of at most this many files or bytes (one sync per group).
    commit_files: int = 64
    commit_bytes: int = 256 * 1024 * 1024
    #: Where the pipeline puts the plaintext ffmpeg needs (a private 0700 dir per original,
    #: removed when done); empty means the system temp dir. Prefer an encrypted or RAM disk.
    work_dir: str = ""
    #: Pipeline executor: "process" (local process pool; "local" says the same) or "inline"
    #: (in this process, for debugging). A Dask scheduler address arrives with the scale-out
    #: issue's Dask part; `doctor` reports what it is given.
    executor: str = "process"
    #: Pipeline worker processes (0: as many as CPUs).
    workers: int = Field(default=0, ge=0)
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
    #: Who is recorded as acting in the custody log; empty means `user@host` of this process.
    actor: str = ""
    #: Source-Organization, Contact-Name and Contact-Email of exported bags (and the report);
    #: `export --organisation/--contact-name/--contact-email` override them.
    organisation: str = ""
    contact_name: str = ""
    contact_email: str = ""
    #: The organisation's C2PA signing credentials for published clips: its certificate chain
    #: (PEM, leaf first) and private key (PKCS#8 PEM, ES256). Unset: nothing can be published.
    c2pa_cert: Path | None = None
    c2pa_key: Path | None = None
    #: An RFC 3161 time-stamp authority for those signatures (optional).
    c2pa_tsa_url: str = ""
    #: The intake's data folder (or a copy of it), for the review app's Intake page: sources'
    #: messages to read and answer. Unset: the page says how to set it.
    intake_data: Path | None = None
    #: Where the review app writes the bags of approved export requests; empty means a folder
    #: `<vault name>-exports` beside the vault (never inside it).
    export_dir: str = ""
    #: Print the traceback of an unexpected error (any value but empty, 0, false, no, off).
    debug: bool = False
    #: The vault passphrase (STRONGROOM_PASSPHRASE). Never shown: SecretStr masks it, and it
    #: is left out of repr and of every dump, so no log or JSON of the settings can carry it.
    passphrase: SecretStr | None = Field(default=None, repr=False, exclude=True)
    #: `rekey --new-passphrase`'s new passphrase (STRONGROOM_NEW_PASSPHRASE), kept like
    #: `passphrase`.
    new_passphrase: SecretStr | None = Field(default=None, repr=False, exclude=True)
    #: A file whose first line is the passphrase; `--passphrase-file` sets it, and it wins
    #: over `passphrase`.
    passphrase_file: Path | None = None
    #: A file of k SLIP-39 shares, one per line (STRONGROOM_SHARES_FILE; `--shares-file`):
    #: opens the vault's keys-shares.age instead of keys.age.
    shares_file: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _database_url_is_usable(cls, value: str) -> str:
        """A malformed URL or unknown driver is a setting's error, not an 'unexpected' one.
        The message never repeats the URL: it may hold a database password."""
        if not value:
            return value
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            make_url(value).get_dialect().import_dbapi()  # the driver module too
        except (NoSuchModuleError, ImportError) as exc:  # NoSuchModuleError is an ArgumentError
            raise ValueError(f"no database driver for it ({type(exc).__name__})") from None
        except ArgumentError:
            raise ValueError("not a database URL (e.g. postgresql+psycopg://user@host/db)") \
                from None
        return value

    @field_validator("blob_store")
    @classmethod
    def _blob_store_is_a_folder_or_s3(cls, value: str) -> str:
        try:
            return check_blob_location(value)
        except StrongroomError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("executor")
    @classmethod
    def _local_is_the_process_pool(cls, value: str) -> str:
        return "process" if value.strip() == "local" else value.strip()

    @field_validator("actor")
    @classmethod
    def _actor_is_one_short_line(cls, value: str) -> str:
        """The actor is signed into every custody event and printed one per line by `log`: a
        newline or escape sequence in it could forge what a reader of the log sees."""
        if len(value) > MAX_ACTOR:
            raise ValueError(f"at most {MAX_ACTOR} characters")
        if any(not c.isprintable() for c in value):
            raise ValueError("one line of printable characters (no newline, tab or escape)")
        return value.strip()

    @field_validator("debug", mode="before")
    @classmethod
    def _any_value_is_on(cls, value: object) -> object:
        """STRONGROOM_DEBUG=1, =yes, =on or =anything turns it on: a debugging switch should
        not itself fail with a validation error."""
        if isinstance(value, str):
            return value.strip().lower() not in ("", "0", "false", "no", "off")
        return value

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.vault.resolve() / 'catalogue.db'}"

    def blob_location(self) -> str:
        """The blob store: a local folder's path, or an `s3://` URL."""
        if self.blob_store.startswith("s3://"):
            return self.blob_store
        root = self.resolved_blob_root()
        return str(root)

    def resolved_blob_root(self) -> Path | None:
        """The local blob folder (None: the blobs are in S3)."""
        if self.blob_store.startswith("s3://"):
            return None
        if self.blob_store.startswith("file://"):
            return Path(self.blob_store[len("file://"):])
        return Path(self.blob_store) if self.blob_store else self.vault / "blobs"

    def vault_folders(self) -> list[Path]:
        """The local folders that hold the vault: nothing made for the outside (an export, a
        published file) may go inside them, nor may an ingest read from them."""
        root = self.resolved_blob_root()
        return [self.vault] if root is None else [self.vault, root]


def check_blob_location(value: str) -> str:
    """A blob store's location as a person writes it: a folder, `file:///folder` or
    `s3://bucket/prefix`; a near miss (`s3:/bucket`, `file://host/folder`, another scheme)
    is refused rather than read as a folder relative to where the command runs."""
    if value.startswith("s3:") and not value.startswith("s3://"):
        raise StrongroomError("an S3 store is s3://bucket/prefix")
    if "://" in value and not value.startswith(("s3://", "file://")):
        raise StrongroomError("a folder, file:///folder or s3://bucket/prefix")
    if value.startswith("file://") and not value[len("file://"):].startswith("/"):
        raise StrongroomError("a file URL names a folder of this machine: file:///folder "
                              "(three slashes, no host)")
    if value.startswith("s3://"):
        from strongroom.vault.s3blobs import parse_s3_url

        try:
            parse_s3_url(value)
        except StrongroomError as exc:
            raise StrongroomError(str(exc).partition(": ")[2]) from None
    return value


def load_settings() -> Settings:
    """Settings from the environment; a malformed value is a usage error naming the variable
    (exit 2, one line), not a traceback."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"STRONGROOM_{str(err['loc'][0]).upper() if err['loc'] else '?'}: {err['msg']}"
            for err in exc.errors(include_input=False)]
        raise StrongroomError("bad setting in the environment: " + "; ".join(problems)) \
            from None


def child_environment() -> dict[str, str]:
    """The environment for a tool we start (age, ffmpeg, tesseract): ours without the
    passphrase. Readable by the same user in /proc/PID/environ, and a tool parsing hostile
    media is the likeliest process to be taken over."""
    return {k: v for k, v in os.environ.items() if k.upper() not in SECRET_VARIABLES}
