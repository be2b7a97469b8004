"""Secure anonymous intake: a separate app where sources send files and messages.

`store.py` is the data folder (ciphertext only), `codenames.py` how a source comes back,
`seal.py` the intake's only cryptography, `app.py` the web app (tus 1.0 and plain forms),
`client.py` the `strongroom send` command. The vault imports what arrived with
`strongroom import-intake` (`strongroom.ingest.intake`). Nothing here imports the vault.
"""
