"""The contact import service: every row either imported or reported by its line, never lost."""

import pytest

from campaigns import imports
from campaigns.models import Campaign, Contact, DoNotCall
from tests.conftest import make_contact

pytestmark = pytest.mark.django_db


def run(campaign, text, region="IN"):
    return imports.import_contacts(campaign, imports.parse(text, region=region))


def test_it_imports_valid_rows_in_e164_with_extra_columns_as_variables(campaign):
    report = run(campaign, "phone,name,plan,city\n09876543210,Asha,gold,Pune\n+91 98765 43211,Vikram,,Goa\n")
    assert report.imported == 2 and report.errors == []
    contacts = {c.phone: c for c in Contact.objects.filter(campaign=campaign)}
    assert contacts["+919876543210"].name == "Asha"
    assert contacts["+919876543210"].variables == {"plan": "gold", "city": "Pune"}
    assert contacts["+919876543211"].variables == {"city": "Goa"}
    assert all(c.workspace_id == campaign.workspace_id for c in contacts.values())


def test_it_reports_each_bad_row_with_its_line_number(campaign, acme):
    make_contact(campaign, phone="+919876543212")
    DoNotCall.objects.create(workspace=acme, phone="+919876543213")
    text = (
        "phone,name\n"
        "+919876543210,Good\n"  # line 2
        "12345,Short\n"  # line 3
        "+919876543210,Again\n"  # line 4
        "+919876543212,Existing\n"  # line 5
        "+919876543213,Opted out\n"  # line 6
        ",No phone\n"  # line 7
        "\n"  # line 8: blank, not a row
        "+919876543214,Fine\n"  # line 9
    )
    report = run(campaign, text)
    assert [(e.line, e.reason) for e in report.errors] == [
        (3, "invalid phone number"),
        (4, "duplicate of line 2"),
        (5, "already in this campaign"),
        (6, "on the do-not-call list"),
        (7, "no phone number"),
    ]
    assert report.imported == 2
    assert set(Contact.objects.filter(campaign=campaign).values_list("phone", flat=True)) == {
        "+919876543210", "+919876543212", "+919876543214",
    }


def test_line_numbers_count_quoted_newlines(campaign):
    report = run(campaign, 'phone,note\n+919876543210,"two\nlines"\nbad,x\n')
    assert [(e.line, e.phone) for e in report.errors] == [(4, "bad")]


def test_it_uses_the_chosen_country_for_numbers_without_a_plus(campaign):
    report = run(campaign, "Phone Number,Name\n2025550123,Ann\n", region="US")
    assert report.imported == 1
    assert Contact.objects.get(campaign=campaign).phone == "+12025550123"


def test_it_adds_to_the_campaigns_contact_total(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=5)
    run(campaign, "phone\n+919876543210\n+919876543211\n")
    campaign.refresh_from_db()
    assert campaign.contacts_total == 7


def test_checking_writes_nothing(campaign):
    report = imports.check(campaign, imports.parse("phone\n+919876543210\n", region="IN"))
    assert len(report.valid) == 1
    assert not Contact.objects.exists()


def test_a_file_without_a_phone_column_is_refused(campaign):
    with pytest.raises(imports.ImportRefused, match="No phone column"):
        imports.parse("name,city\nAsha,Pune\n", region="IN")


def test_a_file_that_is_not_utf8_is_refused_with_a_hint():
    with pytest.raises(imports.ImportRefused, match="UTF-8"):
        imports.decode("phone,name\n+919876543210,Jos\xe9\n".encode("latin-1"))


def test_a_finished_campaign_takes_no_contacts(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.CANCELLED)
    with pytest.raises(imports.ImportRefused, match="cancelled"):
        run(campaign, "phone\n+919876543210\n")
    assert not Contact.objects.exists()


def test_tens_of_thousands_of_rows_are_all_imported(campaign, acme):
    numbers = [f"+9198{n:08d}" for n in range(20_000)]
    DoNotCall.objects.bulk_create([DoNotCall(workspace=acme, phone=p) for p in numbers[:10]])
    text = "phone,name,ref\n" + "".join(f"{p},Name {i},{i}\n" for i, p in enumerate(numbers))
    report = run(campaign, text)
    assert report.imported == 19_990
    assert len(report.errors) == 10
    assert Contact.objects.filter(campaign=campaign).count() == 19_990


def test_parsed_rows_wait_in_their_campaigns_folder_between_upload_and_import(campaign, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    parsed = imports.parse("phone,name,plan\n098765 43210,Asha,gold\n", region="IN")
    key = imports.stash(campaign, parsed)
    assert imports.unstash(campaign, key) == parsed
    assert (tmp_path / "imports" / str(campaign.workspace_id) / str(campaign.pk) / f"{key}.json").exists()
    imports.discard(campaign, key)
    with pytest.raises(imports.ImportRefused):
        imports.unstash(campaign, key)
    with pytest.raises(imports.ImportRefused):
        imports.unstash(campaign, "../../etc/passwd")
