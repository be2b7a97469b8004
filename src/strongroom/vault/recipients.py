"""Who an export may be encrypted to: age X25519 and SSH public keys, checked by age itself."""

from __future__ import annotations

from strongroom.errors import StrongroomError


def check_recipients(recipients: list[str]) -> None:
    """Refuse a malformed age or SSH recipient before anything is written."""
    from pyrage import ssh, x25519

    for r in recipients:
        try:
            if r.startswith("age1"):
                x25519.Recipient.from_str(r)
            elif r.startswith(("ssh-ed25519 ", "ssh-rsa ")):
                ssh.Recipient.from_str(r)
            else:
                raise ValueError
        except Exception:  # pyrage raises its own error types, not ValueError subclasses
            raise StrongroomError(f"not an age or SSH public key: {r[:40]!r}") from None


def encrypt_argv(recipients: list[str]) -> list[str]:
    """The `age` command line that encrypts a stream to every recipient (an export's
    volumes): checked here, run by the caller through `media/run.py`."""
    from strongroom.vault.encryption import age_binary

    binary = age_binary()
    if binary is None:
        raise StrongroomError("encrypting an export needs the `age` command (apt install age)")
    if not recipients:
        raise StrongroomError("give at least one --recipient")
    check_recipients(recipients)
    argv = [binary]
    for r in recipients:
        argv += ["-r", r]
    return argv
