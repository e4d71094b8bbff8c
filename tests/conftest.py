"""The cast, after healthchecks: alice owns acme, bob is a viewer in acme, charlie owns globex.

Everything charlie asks of acme must look missing (404) and change nothing.
"""

import datetime
import shutil

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client, override_settings

from campaigns import compliance, rollups, rules
from campaigns.models import Call, Campaign, Contact
from tenancy.models import Exophone, ExotelAccount, Membership, Role, Workspace
from tests.processes import wait_until

PASSWORD = "correct horse battery staple"


def make_user(email: str, workspace: Workspace, role: Role):
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    Membership.objects.create(user=user, workspace=workspace, role=role)
    return user


# Port 9 (discard) on loopback: nothing listens, so a test that forgets the simulator fails fast
# instead of reaching the real Exotel.
NOWHERE = "http://127.0.0.1:9"


def make_account(workspace: Workspace, **overrides) -> ExotelAccount:
    fields = {
        "label": "Main", "account_sid": f"{workspace.slug}1", "api_key": "key-123456789",
        "api_token": "token-987654321", "api_base_url": NOWHERE,
    }
    return ExotelAccount.objects.create(workspace=workspace, **{**fields, **overrides})


# The cast dials at any hour of any day, so that a test which dials in real time passes whatever the clock
# says; the tests of windows and of the calling rules set the hours they are about.
ANY_TIME = {"window_start": datetime.time.min, "window_end": datetime.time.max, "weekdays": [1, 2, 3, 4, 5, 6, 7]}


def make_campaign(workspace: Workspace, **overrides) -> Campaign:
    """A campaign whose caller-ID pool is `exophones` (default: the account's first number, made if none)."""
    account = overrides.pop("account", None) or workspace.exotel_accounts.first() or make_account(workspace)
    exophones = overrides.pop("exophones", None) or [account.exophones.first() or Exophone.objects.create(
        workspace=workspace, account=account, number="+918047491899", label="Main line"
    )]
    fields = {"name": "Renewals", "account": account, **ANY_TIME}
    campaign = Campaign.objects.create(workspace=workspace, **{**fields, **overrides})
    campaign.exophones.set(exophones)
    return campaign


def call_abroad(campaign: Campaign, *codes: int) -> None:
    """Its caller IDs may call these country codes too (campaigns.pools: by default only their own)."""
    campaign.exophones.update(allowed_countries=[91, *codes])


def make_contact(campaign: Campaign, **overrides) -> Contact:
    fields = {"phone": f"+9198765{Contact.objects.count():05d}", "name": "Asha", **overrides}
    fields.setdefault("recipient_id", compliance.ensure_recipients(campaign.workspace_id, [fields["phone"]])[fields["phone"]])
    return Contact.objects.create(workspace=campaign.workspace, campaign=campaign, **fields)


def make_call(campaign: Campaign, **overrides) -> Call:
    """A call as the engine would have it, counted in the charts' rollups as it stands."""
    contact = overrides.pop("contact", None) or make_contact(campaign)
    fields = {"attempt": contact.attempts + 1, "phone": contact.phone, "exophone": campaign.exophones.first()}
    call = Call.objects.create(workspace=campaign.workspace, campaign=campaign, contact=contact, **{**fields, **overrides})
    rollups.count_placed(call.workspace_id, call.campaign_id, 1, at=call.created_at)
    if call.state in Call.FINAL_STATES:
        rollups.count_ended(call)
    rollups.move_disposition(call, "", call.disposition)
    return call


def wait_for_a_lock_waiter(what: str) -> None:
    """Wait until one session of this test's database waits for a lock: another thread blocked on a
    row this test's open transaction holds (PostgreSQL)."""
    with connections["default"].cursor() as cursor:
        def one_waits() -> bool:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            return cursor.fetchone()[0] == 1
        wait_until(one_waits, timeout=30, what=what)


# The cast's workspaces, like its campaigns, call at any hour (the policy window is the whole day); the
# calling rules' own tests put the product's default back (tests/campaigns/conftest.py).
def make_workspace(name: str, slug: str) -> Workspace:
    return Workspace.objects.create(name=name, slug=slug, **rules.WHOLE_DAY)


@pytest.fixture
def acme(db):
    return make_workspace("Acme", "acme")


@pytest.fixture
def globex(db):
    return make_workspace("Globex", "globex")


@pytest.fixture
def alice(acme):
    return make_user("alice@example.org", acme, Role.OWNER)


@pytest.fixture
def bob(acme):
    return make_user("bob@example.org", acme, Role.VIEWER)


@pytest.fixture
def charlie(globex):
    return make_user("charlie@example.org", globex, Role.OWNER)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice):
    return signed_in(alice)


@pytest.fixture
def bob_client(bob):
    return signed_in(bob)


@pytest.fixture
def charlie_client(charlie):
    return signed_in(charlie)


@pytest.fixture
def campaign(acme):
    return make_campaign(acme)


@pytest.fixture(scope="session", autouse=True)
def namespace():
    """At the end, what this test process left under its namespace (tests/settings.py) goes: queues,
    bindings and groups in a Redis database shared with other runs, or the file queue's folders."""
    yield settings.NAMESPACE
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(match=f"{settings.NAMESPACE}:*", count=1000):
            client.delete(key)
        client.close()
    else:
        for folder in ("data_folder_in", "control_folder"):
            shutil.rmtree(settings.CELERY_BROKER_TRANSPORT_OPTIONS[folder], ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def process_media(tmp_path_factory):
    """Uploads and recordings in a folder of this test process (tests that look at their files use
    one of their own): they are stored by row id, and every xdist worker's database counts from 1."""
    with override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media"))):
        yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    yield
    # Consumers' worker threads keep pooled connections checked out, and PostgreSQL refuses to
    # drop a database in use: close the pool, then end whatever sessions are left.
    for connection in connections.all():
        if connection.vendor != "postgresql":
            continue
        connection.close_pool()
        with django_db_blocker.unblock(), connection._nodb_cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [connection.settings_dict["NAME"]],
            )
