"""An operator's first hour, in a real browser: sign in, connect Exotel, create a campaign, upload contacts."""

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, Contact
from tenancy.models import Exophone, ExotelAccount
from tests import processes
from tests.browser.conftest import shoot, sign_in, signed_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CSV = (
    "phone,name,plan\n"
    "+919876543210,Asha,gold\n"
    "98765 43211,Vikram,silver\n"
    "12345,Too short,\n"
    "+919876543210,Asha again,\n"
    "+919876543212,Meera,gold\n"
)


@pytest.fixture
def worker(server, tmp_path, settings):
    """Checks and imports uploaded contacts, as in production."""
    worker = processes.start_worker(tmp_path, public_base_url=server.url, MEDIA_ROOT=settings.MEDIA_ROOT)
    yield worker
    worker.stop()


def test_an_operator_connects_exotel_creates_a_campaign_and_uploads_contacts(page, worker, alice, acme, tmp_path):
    sign_in(page, alice.email)
    shoot(page, "overview-empty")

    page.get_by_role("link", name="Add your Exotel account").click()
    page.get_by_label("Label").fill("Main")
    page.get_by_label("Account SID").fill("acme1")
    page.get_by_label("API key").fill("key-123456789")
    page.get_by_label("API token").fill("token-987654321")
    shoot(page, "account-form")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Exotel account Main saved").wait_for()
    assert "key-123456789" not in page.content()

    page.get_by_role("link", name="Add an Exophone").click()
    page.get_by_label("Number").fill("080 4749 1899")
    page.get_by_label("Label").fill("Main line")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Exophone +918047491899 saved").wait_for()
    shoot(page, "accounts")

    page.get_by_role("link", name="Campaigns", exact=True).click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Name").fill("Renewals")
    page.get_by_label("Exotel account").select_option(label="Main (acme1)")
    page.get_by_label("+918047491899 Main line").check()  # the campaign's caller-ID pool
    page.get_by_label("Pacing (calls per minute)").fill("0")
    page.get_by_role("button", name="Create campaign").click()
    page.get_by_text("Ensure this value is greater than or equal to 1.").wait_for()  # at the field
    shoot(page, "campaign-form-errors")
    page.get_by_label("Pacing (calls per minute)").fill("30")
    page.get_by_role("button", name="Create campaign").click()
    page.get_by_text("Campaign Renewals created").wait_for()

    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CSV)
    page.get_by_label("CSV file").set_input_files(str(contacts))
    shoot(page, "upload")
    page.get_by_role("button", name="Upload and preview").click()
    page.get_by_role("heading", name="Rows that will not be imported").wait_for()
    errors = page.locator("#row-errors tbody tr").all_inner_texts()
    assert [" ".join(e.split()) for e in errors] == ["4 12345 invalid phone number", "5 +919876543210 duplicate of line 2"]
    shoot(page, "preview")
    page.get_by_role("button", name="Import 3 contacts").click()
    page.get_by_text("Imported 3 contacts; 2 rows were not imported.").wait_for()
    shoot(page, "campaign-detail")

    campaign = Campaign.objects.get(workspace=acme)
    assert Contact.objects.filter(campaign=campaign).count() == 3 and campaign.contacts_total == 3
    assert ExotelAccount.objects.get(workspace=acme).api_key == "key-123456789"
    assert Exophone.objects.get(workspace=acme).number == "+918047491899"


def test_pages_read_well_at_phone_width(page, alice, campaign):
    sign_in(page, alice.email)
    for name, path in [("calls", "/calls/"), ("campaigns", "/campaigns/"), ("do-not-call", "/do-not-call/"),
                       ("members", "/workspaces/members/"), ("endpoints", "/workspaces/endpoints/"),
                       ("campaign-new", "/campaigns/new/")]:
        page.goto(path)
        shoot(page, name)


def test_forms_work_from_the_keyboard_alone(page, alice, campaign):
    page.goto("/login/")
    expect(page.get_by_label("E-mail")).to_be_focused()  # on arrival: wait for it, then type
    page.keyboard.type(alice.email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    signed_in(page)
    page.goto("/do-not-call/")
    page.locator("#id_phone").focus()
    page.keyboard.type("09876543210")
    page.keyboard.press("Enter")
    page.get_by_text("+919876543210 added.").wait_for()
    focused = page.evaluate("document.activeElement.tagName")
    assert focused in ("BODY", "A", "INPUT", "BUTTON")
