"""The workplace's charts: valid SVG drawn on the server, readable as text, styled by
class only (the strict CSP refuses ``style=""``), every value escaped."""

import xml.etree.ElementTree as ET

from loyalty.workplace.charts import bar_chart, describe, sparkline

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 (our own markup)


def no_inline_style(root: ET.Element) -> bool:
    return all("style" not in element.attrib for element in root.iter())


def test_a_bar_chart_is_svg_with_a_title_and_one_bar_per_day():
    series = [("2026-12-01", 0), ("2026-12-02", 50), ("2026-12-03", 100)]

    root = parsed(bar_chart(series, title="Points issued per day", css="chart-issued"))

    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title.text == "Points issued per day" and root.get("aria-labelledby") == title.get("id")
    bars = root.findall(f"{SVG}rect")
    assert [bar.find(f"{SVG}title").text for bar in bars] == ["2026-12-01: 0", "2026-12-02: 50", "2026-12-03: 100"]
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[0] == 0 and heights[2] == 2 * heights[1] and heights[2] == 59
    assert "chart-issued" in root.get("class").split()
    assert no_inline_style(root)


def test_a_bar_chart_of_nothing_or_of_zeros_still_parses():
    assert parsed(bar_chart([], title="Nothing")).findall(f"{SVG}rect") == []
    zeros = parsed(bar_chart([("a", 0), ("b", 0)], title="Zeros"))
    assert [float(bar.get("height")) for bar in zeros.findall(f"{SVG}rect")] == [0, 0]


def test_a_sparkline_runs_through_every_value_and_marks_the_last():
    root = parsed(sparkline([1, 5, 3], title="Last 7 days", width=100, height=24))

    line = root.find(f"{SVG}polyline")
    points = [tuple(map(float, pair.split(","))) for pair in line.get("points").split()]
    assert [x for x, _ in points] == [0, 50, 100]
    ys = [y for _, y in points]
    assert ys[1] == min(ys) and ys[0] == max(ys)  # the highest value is drawn highest (smallest y)
    assert root.find(f"{SVG}circle") is not None and root.find(f"{SVG}title").text == "Last 7 days"
    assert no_inline_style(root)


def test_a_sparkline_of_one_value_or_none_parses():
    assert parsed(sparkline([7], title="One")).find(f"{SVG}polyline") is not None
    assert parsed(sparkline([], title="None")).find(f"{SVG}polyline") is not None


def test_text_in_a_chart_is_escaped():
    root = parsed(bar_chart([("<b>&", 1)], title='Points "issued" <script>'))

    assert root.find(f"{SVG}title").text == 'Points "issued" <script>'
    assert root.find(f"{SVG}rect/{SVG}title").text == "<b>&: 1"
    assert "<script>" not in str(bar_chart([("x", 1)], title="<script>"))


def test_chart_ids_are_unique_on_a_page():
    first, second = parsed(sparkline([1, 2], title="a")), parsed(sparkline([1, 2], title="b"))
    assert first.find(f"{SVG}title").get("id") != second.find(f"{SVG}title").get("id")


def test_a_chart_title_says_the_figures_in_words():
    series = [("2026-12-01", 10), ("2026-12-02", 300), ("2026-12-03", 0)]
    assert describe(series, what="Points issued per day") == (
        "Points issued per day, 2026-12-01 to 2026-12-03: total 310, highest 300 on 2026-12-02."
    )
    assert describe([], what="Alerts") == "Alerts: no data."
