"""Contact import: time and memory of each step, through the functions the request and the tasks run.

    python bench/imports.py [--rows 50000] [--database-url postgres://postgres@127.0.0.1:5432/bench_imports]

In its own database (created if missing) and a temporary media folder, into a fresh campaign:
- a CSV of `rows` contacts (1% invalid numbers, 1% repeated): the request's `receive`, the check task
  (parse, E.164, judge), the import task (judge again, write in windows of 1,000);
- the review's hostile files: 19.9 MB of one repeated row, and a first line of a million columns.
Prints seconds, rows per second and how much the process's peak memory (ru_maxrss) grew.
"""

import argparse
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_imports"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(name: str, work):
    before, started = peak_mb(), time.perf_counter()
    result = work()
    print(f"{name:58} {time.perf_counter() - started:7.2f} s   peak memory +{peak_mb() - before:4.0f} MB")
    return result


def contacts_csv(rows: int) -> bytes:
    lines = ["phone,name,plan,city"]
    for i in range(rows):
        phone = "12345" if i % 100 == 7 else f"09{(i if i % 100 != 8 else i - 1):09d}"[:11]
        lines.append(f"{phone},Name {i},gold,Pune")
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="bench-imports-")
    from bench.dashboard import ensure_database, setup_django

    if args.database_url.startswith("postgres"):
        ensure_database(args.database_url)
    setup_django(args.database_url)
    from campaigns import imports
    from campaigns.models import Campaign
    from tenancy.models import Exophone, ExotelAccount, Workspace

    Workspace.objects.filter(slug="bench-imports").delete()
    workspace = Workspace.objects.create(name="Bench imports", slug="bench-imports")
    account = ExotelAccount.objects.create(workspace=workspace, label="Main", account_sid="bench1",
                                           api_key="k", api_token="t")
    exophone = Exophone.objects.create(workspace=workspace, account=account, number="+918047491899")

    def campaign():
        created = Campaign.objects.create(workspace=workspace, name="Import bench", account=account)
        created.exophones.add(exophone)
        return created

    data = contacts_csv(args.rows)
    print(f"{args.rows:,} rows ({len(data) / 2**20:.1f} MB), 1% invalid, 1% repeated:")
    upload = step("  request: receive (first line, store the file)",
                  lambda: imports.receive(campaign(), io.BytesIO(data), region="IN", user=None))
    started = time.perf_counter()
    step("  task: check (parse, E.164, judge against the campaign)", lambda: imports.check_upload(upload.pk))
    upload.refresh_from_db()
    imports.confirm(upload)
    step("  task: import (judge again, write in windows of 1,000)", lambda: imports.import_upload(upload.pk))
    upload.refresh_from_db()
    total = time.perf_counter() - started
    print(f"  {upload.report['imported']:,} contacts written, {upload.report['rejected']:,} rows reported; "
          f"check and import {total:.1f} s ({args.rows / total:,.0f} rows/s)")

    repeated = b"phone,name,plan\n" + b"+919876543210,Asha Rao,gold\n" * (int(19.9 * 2**20) // 28)
    print(f"\n{len(repeated) / 2**20:.1f} MB of one repeated row:")
    upload = step("  request: receive",
                  lambda: imports.receive(campaign(), io.BytesIO(repeated), region="IN", user=None))
    step("  task: check", lambda: imports.check_upload(upload.pk))
    upload.refresh_from_db()
    print(f"  {upload.state}: {upload.message}")

    columns = b"phone" + b",c" * 1_000_000 + b"\n+919876543210\n"
    print(f"\na first line of a million columns ({len(columns) / 2**20:.1f} MB):")
    try:
        step("  request: receive", lambda: imports.receive(campaign(), io.BytesIO(columns), region="IN", user=None))
    except imports.ImportRefused as exc:
        print(f"  refused: {exc}")
    Campaign.objects.filter(workspace=workspace).delete()
    workspace.delete()


if __name__ == "__main__":
    main()
