"""A laptop's secrets: SECRET_KEY and FIELD_ENCRYPTION_KEYS generated once into `var/dev-keys.env`.

Only for development (DEBUG, the demo, the test suite): production passes its own in the
environment and refuses to start without them (config/settings.py). Generated keys stay the same
across runs, so the secrets a demo encrypted stay readable.
"""

import os
import secrets
from pathlib import Path


def dev_keys(var_dir: Path) -> dict[str, str]:
    path = var_dir / "dev-keys.env"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        draft.write_text(f"SECRET_KEY={secrets.token_urlsafe(50)}\nFIELD_ENCRYPTION_KEYS={secrets.token_urlsafe(32)}\n")
        try:
            os.link(draft, path)  # atomic and exclusive: processes starting together agree on one file
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
