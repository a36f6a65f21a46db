"""A cheaper argon2 for the test suite: the same algorithm and hash format, lower cost.

Production uses Django's Argon2PasswordHasher parameters (settings.PASSWORD_HASHERS);
tests/staffauth/test_passwords.py checks those separately.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 1
