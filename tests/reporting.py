"""Figures that tests report (printed in the pytest summary, e.g. matrix cell counts)."""

FIGURES: dict[str, int] = {}


def add_figure(name: str, value: int) -> None:
    FIGURES[name] = FIGURES.get(name, 0) + value
