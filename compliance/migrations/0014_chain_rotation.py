"""Chain key rotation records (append-only, like the other chain records)."""

from django.db import migrations, models

from loyalty.kernel.append_only import append_only_triggers


class Migration(migrations.Migration):
    dependencies = [("compliance", "0013_retention_inactive")]

    operations = [
        migrations.CreateModel(
            name="ChainRotation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("stream", models.CharField(max_length=40)),
                ("seq", models.BigIntegerField()),
                ("chain", models.BinaryField()),
                ("key_id", models.CharField(max_length=20)),
                ("prev_key_id", models.CharField(max_length=20)),
                ("mac_prev", models.BinaryField()),
                ("mac_new", models.BinaryField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("stream", "key_id"), name="chain_rotation_key_once")],
            },
        ),
        append_only_triggers("compliance_chainrotation"),
    ]
