"""Reading report.html in tests: it is XHTML, so an XML parser gives its sections, tables and inline plots."""

from __future__ import annotations

import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def parse(page: str) -> ET.Element:
    return ET.fromstring(page)


def section(root: ET.Element, key: str) -> ET.Element:
    found = root.find(f".//section[@id='{key}']")
    assert found is not None, f"no section {key}"
    return found


def text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def rows(element: ET.Element) -> list[list[str]]:
    """Data rows of every table in an element, as cell texts."""
    return [[text(td) for td in tr.findall("td")] for tr in element.iter("tr") if tr.findall("td")]


def titles(element: ET.Element) -> list[str]:
    """Texts of the SVG <title> elements (a plot's own title first, then its tooltips)."""
    return [text(t) for t in element.iter(f"{SVG}title")]


def summary(root: ET.Element) -> dict[str, str]:
    return {row[0]: row[1] for row in rows(section(root, "summary")) if len(row) == 2}


def confusion_cells(root: ET.Element) -> dict[tuple[str, str], int]:
    """(true, predicted) -> count, from the heat map's cell tooltips."""
    cells = {}
    for title in titles(section(root, "confusion"))[1:]:
        pair, count = title.rsplit(": ", 1)
        true, predicted = pair.split(" predicted as ")
        cells[(true, predicted)] = int(count)
    return cells


def recall_bars(root: ET.Element) -> dict[str, str]:
    return dict(title.rsplit(": ", 1) for title in titles(section(root, "recall"))[1:])
