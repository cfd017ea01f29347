from django.db import migrations, models

from lib.migrations import PostgresOnlySQL


class Migration(migrations.Migration):
    """Indexes for a million cases: every case in the queue's order (status=all), and the open ones alone
    (PostgreSQL only: NULLS LAST), closed cases by when they closed, violations by (case, rule) for the rule
    filter, actions by when they were applied (statements of reasons, newest first)."""

    dependencies = [
        ('enforcement', '0010_transparency'),
    ]

    operations = [
        PostgresOnlySQL(
            'CREATE INDEX "case_queue_order_idx" ON "enforcement_case" '
            '("review_due_at" ASC NULLS LAST, "severity_rank" DESC, "id" DESC)',
            'DROP INDEX IF EXISTS "case_queue_order_idx"',
        ),
        # Open cases only (the queue's default and per-status views): a few reviewed open cases are not looked for
        # among the million closed ones that also have no deadline.
        PostgresOnlySQL(
            'CREATE INDEX "case_open_queue_order_idx" ON "enforcement_case" '
            '("review_due_at" ASC NULLS LAST, "severity_rank" DESC, "id" DESC) '
            "WHERE \"status\" IN ('open', 'awaiting_customer', 'awaiting_approval', 'actioned', 'appealed')",
            'DROP INDEX IF EXISTS "case_open_queue_order_idx"',
        ),
        migrations.AddIndex(
            model_name='case',
            index=models.Index(models.OrderBy(models.F('closed_at'), descending=True),
                               models.OrderBy(models.F('id'), descending=True),
                               condition=models.Q(('status', 'closed')), name='case_closed_idx'),
        ),
        migrations.AddIndex(
            model_name='enforcementaction',
            index=models.Index(fields=['applied_at', 'id'], name='action_applied_idx'),
        ),
        migrations.AddIndex(
            model_name='violation',
            index=models.Index(fields=['case', 'rule'], name='violation_case_rule_idx'),
        ),
    ]
