from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = (
        "Print the current TOTP code of a demo staff user (DEBUG only), for a first run without an authenticator app."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        if not settings.DEBUG:
            raise CommandError("demo_otp runs only with DEBUG=1.")
        device = TOTPDevice.objects.filter(user__username=username.strip().lower(), confirmed=True).first()
        if device is None:
            raise CommandError(f"No confirmed authenticator for {username!r}.")
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
        self.stdout.write(f"{code:0{device.digits}d}")
