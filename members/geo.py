"""Where a login comes from: a pluggable geolocation backend and great-circle distances.

The backend is ``settings.GEOLOCATION_BACKEND``, a class with ``locate(ip) -> (lat, lon)
| None``. Locations are approximate (city level) and only ever used to compare two
logins (impossible travel); they are never shown or logged.
"""

from __future__ import annotations

import ipaddress
import math

from django.conf import settings
from django.utils.module_loading import import_string

Location = tuple[float, float]

EARTH_RADIUS_KM = 6371.0088


class NoGeolocation:
    """Locates nothing: impossible-travel checks are off."""

    def locate(self, ip: str | None) -> Location | None:
        return None


class TestGeolocation:
    """A fixed table of the documentation address ranges (RFC 5737) mapped to cities,
    for tests and demonstrations."""

    __test__ = False  # not a pytest test class

    NETWORKS: dict[str, Location] = {
        "192.0.2.0/25": (3.1390, 101.6869),  # Kuala Lumpur
        "192.0.2.128/25": (5.4141, 100.3288),  # George Town, Penang (about 290 km from KL)
        "198.51.100.0/24": (1.3521, 103.8198),  # Singapore (about 315 km from KL)
        "203.0.113.0/25": (51.5074, -0.1278),  # London (about 10,550 km from KL)
        "203.0.113.128/25": (40.7128, -74.0060),  # New York
    }

    def __init__(self) -> None:
        self._networks = [(ipaddress.ip_network(net), loc) for net, loc in self.NETWORKS.items()]

    def locate(self, ip: str | None) -> Location | None:
        if not ip:
            return None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for network, location in self._networks:
            if address in network:
                return location
        return None


def geolocation():
    """An instance of the configured backend."""
    return import_string(settings.GEOLOCATION_BACKEND)()


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance between two (latitude, longitude) points (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
