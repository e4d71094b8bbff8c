
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tenancy', '0002_invitation'),
    ]

    operations = [
        migrations.AddField(
            model_name='exotelaccount',
            name='streams_checked_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='exotelaccount',
            name='streams_error',
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name='exotelaccount',
            name='streams_mismatch_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
