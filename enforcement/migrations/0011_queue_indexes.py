from django.db import migrations, models

from lib.migrations import PostgresOnlySQL


class Migration(migrations.Migration):
    """Indexes for the queue at a million cases: every case in the queue's order (status=all; PostgreSQL only),
    closed cases by when they closed, and violations by (case, rule) for the rule filter."""

    dependencies = [
        ('enforcement', '0010_transparency'),
    ]

    operations = [
        PostgresOnlySQL(
            'CREATE INDEX "case_queue_order_idx" ON "enforcement_case" '
            '("review_due_at" ASC NULLS LAST, "severity_rank" DESC, "id" DESC)',
            'DROP INDEX IF EXISTS "case_queue_order_idx"',
        ),
        migrations.AddIndex(
            model_name='case',
            index=models.Index(models.OrderBy(models.F('closed_at'), descending=True),
                               models.OrderBy(models.F('id'), descending=True),
                               condition=models.Q(('status', 'closed')), name='case_closed_idx'),
        ),
        migrations.AddIndex(
            model_name='violation',
            index=models.Index(fields=['case', 'rule'], name='violation_case_rule_idx'),
        ),
    ]
