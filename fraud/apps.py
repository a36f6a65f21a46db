from django.apps import AppConfig


class FraudConfig(AppConfig):
    name = "fraud"
    verbose_name = "Fraud"

    def ready(self) -> None:
        from fraud import receivers
        from members.signals import security_event_recorded

        security_event_recorded.connect(
            receivers.member_security_event_received, dispatch_uid="fraud.member_security_event"
        )
