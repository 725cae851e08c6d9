"""The standalone mode's secret key: generated once, kept in the data directory."""

import os
import secrets
import time
from pathlib import Path


def load_or_create_secret_key(data_dir: Path) -> str:
    """Return the key stored in ``data_dir/secret_key``, creating it on first use.

    Safe when several processes start at once: the file is created exclusively,
    and a loser of that race reads the winner's key.
    """
    path = data_dir / "secret_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exists:
        key = path.read_text().strip()
        if key:
            return key
        # A writer created the file and has not written yet; wait for it briefly.
        for _ in range(50):
            time.sleep(0.02)
            key = path.read_text().strip()
            if key:
                return key
        raise RuntimeError(f"{path} exists but is empty; delete it to generate a new key") from exists
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
