"""Create the five staff roles with their permissions (staffauth.roles)."""

from django.db import migrations

# Pinned leaves, not "__latest__": a library upgrade that adds a migration would
# otherwise make this applied migration depend on an unapplied one.
ROLE_APP_MIGRATIONS = [
    ("auth", "0012_alter_user_first_name_max_length"),
    ("contenttypes", "0002_remove_content_type_name"),
    ("loyalty", "0001_initial"),
    ("otp_totp", "0003_add_timestamps"),
    ("otp_static", "0003_add_timestamps"),
    ("axes", "0010_accessattemptexpiration"),
    ("auditlog", "0017_add_actor_email"),
    ("django_celery_beat", "0019_alter_periodictasks_options"),
]


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    from staffauth.roles import apply_roles

    # Permissions are normally created after all migrations (post_migrate); create them
    # now so that the roles can be granted in this migration.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    # Not strict: permissions of apps migrated later are granted by the post_migrate
    # sync (staffauth.receivers) once every app's migrations have run.
    apply_roles(Group=apps.get_model("auth", "Group"), Permission=apps.get_model("auth", "Permission"), strict=False)


class Migration(migrations.Migration):
    dependencies = [("staffauth", "0001_initial"), *ROLE_APP_MIGRATIONS]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
