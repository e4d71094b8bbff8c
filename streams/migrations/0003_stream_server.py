
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('streams', '0002_prompts_and_outcome'),
    ]

    operations = [
        migrations.CreateModel(
            name='StreamServer',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200, unique=True)),
                ('seen_at', models.DateTimeField()),
            ],
        ),
    ]
