"""The drills' figures: printed as they are measured (visible with -s) and again in the suite's summary."""

FIGURES: list[str] = []


def record_figure(line: str) -> None:
    print(line)
    FIGURES.append(line)
