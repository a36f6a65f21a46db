"""Create the five staff roles with their permissions (staffauth.roles)."""

from django.db import migrations

ROLE_APPS = ["auth", "contenttypes", "loyalty", "otp_totp", "otp_static", "axes", "auditlog", "django_celery_beat"]


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    from staffauth.roles import apply_roles

    # Permissions are normally created after all migrations (post_migrate); create them
    # now so that the roles can be granted in this migration.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    apply_roles(Group=apps.get_model("auth", "Group"), Permission=apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = (
        [("staffauth", "0001_initial")]
        + [(app, "__latest__") for app in ROLE_APPS if app != "loyalty"]
        + [("loyalty", "0001_initial")]
    )

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
