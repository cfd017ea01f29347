from django.db import migrations, models


class Migration(migrations.Migration):
    """Actions by when they were applied: the statements of reasons, newest first, a page at a time."""

    dependencies = [
        ('enforcement', '0011_queue_indexes'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='enforcementaction',
            index=models.Index(fields=['applied_at', 'id'], name='action_applied_idx'),
        ),
    ]
