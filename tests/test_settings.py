import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_deploy_check_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "SECRET_KEY": "a-production-secret-key-of-sufficient-length-and-entropy-7f3k2",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "campaigns.example.com",
        "PUBLIC_BASE_URL": "https://campaigns.example.com",
        "FIELD_ENCRYPTION_KEYS": "new-key,old-key",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


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
