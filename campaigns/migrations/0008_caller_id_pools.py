"""Caller-ID pools: each campaign's single Exophone becomes a pool of one, and its calls record it.

Calls placed before pools record the campaign's Exophone as it is at migration time, which is the
number they were dialled from unless the campaign's Exophone was changed since.
"""

import django.db.models.deletion
from django.db import migrations, models


def pool_from_single(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    Call = apps.get_model("campaigns", "Call")
    Pool = Campaign.exophones.through
    pairs = list(Campaign.objects.values_list("pk", "exophone_id"))
    Pool.objects.bulk_create(Pool(campaign_id=campaign, exophone_id=exophone) for campaign, exophone in pairs)
    for campaign, exophone in pairs:
        Call.objects.filter(campaign_id=campaign).update(exophone_id=exophone)


def single_from_pool(apps, schema_editor):
    """Backwards: a campaign keeps the first number of its pool (the others cannot be kept)."""
    Campaign = apps.get_model("campaigns", "Campaign")
    Pool = Campaign.exophones.through
    for campaign in Campaign.objects.all():
        first = Pool.objects.filter(campaign_id=campaign.pk).order_by("exophone__number").first()
        Campaign.objects.filter(pk=campaign.pk).update(exophone_id=first.exophone_id if first else None)


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0007_calling_rules'),
        ('tenancy', '0005_exophone_pool_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='campaign',
            name='exophones',
            field=models.ManyToManyField(related_name='campaigns', to='tenancy.exophone'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='prefer_local_caller_id',
            field=models.BooleanField(default=False, help_text="Prefer a number in the recipient's area where the numbering data tells it."),
        ),
        migrations.AddField(
            model_name='call',
            name='exophone',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='calls', to='tenancy.exophone'),
        ),
        migrations.AddField(
            model_name='call',
            name='exotel_status',
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        # Nullable before it goes, so that going backwards can add it again and fill it.
        migrations.AlterField(
            model_name='campaign',
            name='exophone',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.exophone'),
        ),
        migrations.RunPython(pool_from_single, single_from_pool),
        migrations.RemoveField(
            model_name='campaign',
            name='exophone',
        ),
        migrations.AddIndex(
            model_name='call',
            index=models.Index(fields=['exophone', 'created_at'], name='call_exophone_recent'),
        ),
        migrations.AlterField(
            model_name='hold',
            name='reason',
            field=models.CharField(choices=[('do-not-call', 'On the do-not-call list'), ('no-window', 'Outside every window'), ('cap', 'Attempt cap reached'), ('unreachable', 'Invalid or non-dialable number'), ('country-not-allowed', 'Country not allowed for this Exophone')], max_length=20),
        ),
    ]
