from django.apps import AppConfig, apps
from django.db.models.signals import post_save


class ComplianceConfig(AppConfig):
    name = "compliance"

    def ready(self) -> None:
        """Hook the chained streams (COMPLIANCE.md §3).

        Signals, not a kernel registry: the apps that write these rows sit below compliance
        and may not import it; a ``post_save`` receiver registered here runs right after the
        INSERT on the same connection, inside the writer's transaction, so the link commits
        or rolls back with its row, and the apps below stay unaware of chaining.
        """
        from compliance.chain import STREAMS, chain_append

        for stream in STREAMS.values():
            if stream.queued:
                continue  # queued by a database trigger (migration 0002_chain_sql)
            model = apps.get_model(stream.model)

            def receiver(sender, instance, created, raw=False, _stream=stream.name, **kwargs):  # type: ignore[no-untyped-def]
                if created and not raw:
                    chain_append(_stream, instance)

            post_save.connect(receiver, sender=model, weak=False, dispatch_uid=f"compliance.chain.{stream.name}")
        # The product's log filter redacts record attributes named after restricted fields
        # of the classification register (staffauth sits below compliance: injected here).
        from compliance.access import record
        from compliance.register import log_redacted_names
        from loyalty.kernel import access_log
        from staffauth import logging as staff_logging

        staff_logging.RESTRICTED_ATTRIBUTES = log_redacted_names()
        # The lower layers' access hooks (admin mixin, download helper) write through here.
        access_log.install(record)
        # The member API's terms gate and the enrolment's acceptance (members sits below
        # compliance: injected here, as the access recorder is).
        from compliance import consumer
        from members.services import terms as member_terms

        member_terms.install(
            member_terms.TermsHooks(
                gate=consumer.terms_gate,
                current_version=lambda: getattr(consumer.terms_current(), "version", None),
                accept=consumer.terms_accept_at_enrolment,
            )
        )
        # A correction request completes when the member's verified phone or email change
        # lands: their ``contact_changed`` security event, in the change's transaction.
        from compliance.requests import correction_contact_changed

        def contact_changed(sender, instance, created, raw=False, **kwargs):  # type: ignore[no-untyped-def]
            if created and not raw and instance.kind == "contact_changed":
                for field in instance.detail.get("fields", []):
                    correction_contact_changed(
                        member_id=instance.member_id,
                        field=field,
                        verification_id=instance.detail.get("verification_id"),
                    )

        post_save.connect(
            contact_changed,
            sender=apps.get_model("members.MemberSecurityEvent"),
            weak=False,
            dispatch_uid="compliance.requests.correction",
        )
