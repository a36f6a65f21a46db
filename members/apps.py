from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Members"

    def ready(self):
        from auditlog.registry import auditlog

        from members.models import SECRET_COLUMNS, Member

        # Ciphertexts, blind indexes and the wrapped data key never enter audit diffs
        # (neither plaintext nor ciphertext of personal data belongs in the audit log).
        auditlog.register(Member, exclude_fields=list(SECRET_COLUMNS))
