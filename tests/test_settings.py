import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"SECRET_KEY": "a-production-secret-key-of-sufficient-length-and-entropy-7f3k2",
           "FIELD_ENCRYPTION_KEYS": "new-key,old-key"}
LAPTOP_ONLY = ("DEV_KEYS", "OUTBOUND_ALLOW_LOOPBACK", "DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "BEHIND_PROXY")


def run(argv: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess:
    """`argv` in a process with the product's settings and only `env` set, as on a fresh server."""
    inherited = {key: value for key, value in os.environ.items() if key not in LAPTOP_ONLY}
    env = {**inherited, "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", **env}
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True)


def setting(name: str, tmp_path, **env: str) -> str:
    result = run(["-c", f"import django; django.setup(); from django.conf import settings; print(settings.{name})"],
                 tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_deploy_check_is_clean_with_production_settings(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, **SECRETS,
                 ALLOWED_HOSTS="campaigns.example.com", PUBLIC_BASE_URL="https://campaigns.example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS"])
def test_the_server_refuses_to_start_without_its_secrets(tmp_path, missing):
    given = {name: value for name, value in SECRETS.items() if name != missing}
    result = run(["-c", "import config.asgi"], tmp_path, **given)
    assert result.returncode != 0
    assert "Set SECRET_KEY and FIELD_ENCRYPTION_KEYS" in result.stderr
    assert not (tmp_path / "dev-keys.env").exists()


def test_the_encryption_key_is_never_derived_from_the_secret_key(tmp_path):
    assert setting("FIELD_ENCRYPTION_KEYS", tmp_path, **SECRETS) == "['new-key', 'old-key']"
    result = run(["-c", "import config.asgi"], tmp_path, SECRET_KEY=SECRETS["SECRET_KEY"])
    assert result.returncode != 0


def test_a_laptop_generates_its_keys_once(tmp_path):
    first = setting("SECRET_KEY", tmp_path, DEBUG="true")
    assert len(first) > 50 and setting("SECRET_KEY", tmp_path, DEBUG="true") == first
    assert setting("FIELD_ENCRYPTION_KEYS", tmp_path, DEBUG="true") != "[]"
    assert f"SECRET_KEY={first}" in (tmp_path / "dev-keys.env").read_text()


def test_the_demo_starts_on_a_fresh_machine_with_nothing_set(tmp_path):
    result = run(["manage.py", "demo", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dev-keys.env").exists()


def test_x_forwarded_proto_is_believed_only_behind_a_proxy(tmp_path):
    assert setting("SECURE_PROXY_SSL_HEADER", tmp_path, **SECRETS) == "None"
    assert setting("SECURE_PROXY_SSL_HEADER", tmp_path, **SECRETS, BEHIND_PROXY="true") == \
        "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    (tmp_path / "empty.env").touch()  # not a developer's own .env
    compose = ["docker-compose", "--env-file", str(tmp_path / "empty.env"), "-f", str(ROOT / "docker-compose.yml"),
               "config", "-q"]
    env = {key: value for key, value in os.environ.items() if key not in LAPTOP_ONLY}
    refused = subprocess.run(compose, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "set SECRET_KEY" in refused.stderr
    assert subprocess.run(compose, cwd=tmp_path, env={**env, **SECRETS}, capture_output=True).returncode == 0


def test_pages_forbid_inline_script(client):
    policy = client.get("/login/").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == directives["base-uri"] == "'none'"


def test_no_template_holds_an_inline_script_or_handler():
    """What the policy would block must not be in our pages: scripts live in static/js."""
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|javascript:", re.IGNORECASE)
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "templates").rglob("*.html")
                 if inline.search(path.read_text())]
    assert offenders == []
