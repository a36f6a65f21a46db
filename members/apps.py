from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Members"

    def ready(self):
        from auditlog.registry import auditlog

        from members.models import Member

        auditlog.register(Member)
