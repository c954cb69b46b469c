"""`check --junit`: the XML validates against the common JUnit schema (Jenkins/Ant shape, written out below)."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema


from helpers.cli import run_cli

REPO = Path(__file__).resolve().parent.parent
V1 = REPO / "fixtures" / "versions" / "v1"
V2 = REPO / "fixtures" / "versions" / "v2"

# The JUnit XML shape CI servers read (Jenkins' junit plugin, Ant's XMLJUnitResultFormatter, GitLab, surefire),
# restated as a schema: <testsuites> of <testsuite> of <testcase>, each case with any of skipped/error/failure
# and system-out/system-err; counts are non-negative integers, times decimals, the timestamp an ISO date-time.
JUNIT_XSD = """\
<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:simpleType name="seconds">
    <xs:restriction base="xs:decimal"><xs:minInclusive value="0"/></xs:restriction>
  </xs:simpleType>
  <xs:complexType name="outcome" mixed="true">
    <xs:attribute name="message" type="xs:string"/>
    <xs:attribute name="type" type="xs:string"/>
  </xs:complexType>
  <xs:element name="failure" type="outcome"/>
  <xs:element name="error" type="outcome"/>
  <xs:element name="skipped">
    <xs:complexType mixed="true"><xs:attribute name="message" type="xs:string"/></xs:complexType>
  </xs:element>
  <xs:element name="system-out" type="xs:string"/>
  <xs:element name="system-err" type="xs:string"/>
  <xs:element name="property">
    <xs:complexType>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="value" type="xs:string" use="required"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="properties">
    <xs:complexType><xs:sequence><xs:element ref="property" minOccurs="0" maxOccurs="unbounded"/></xs:sequence></xs:complexType>
  </xs:element>
  <xs:element name="testcase">
    <xs:complexType>
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element ref="skipped"/>
        <xs:element ref="error"/>
        <xs:element ref="failure"/>
        <xs:element ref="system-out"/>
        <xs:element ref="system-err"/>
      </xs:choice>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="classname" type="xs:string"/>
      <xs:attribute name="time" type="seconds"/>
      <xs:attribute name="file" type="xs:string"/>
      <xs:attribute name="line" type="xs:nonNegativeInteger"/>
      <xs:attribute name="assertions" type="xs:nonNegativeInteger"/>
      <xs:attribute name="status" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="testsuite">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="properties" minOccurs="0"/>
        <xs:element ref="testcase" minOccurs="0" maxOccurs="unbounded"/>
        <xs:element ref="system-out" minOccurs="0"/>
        <xs:element ref="system-err" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="failures" type="xs:nonNegativeInteger"/>
      <xs:attribute name="errors" type="xs:nonNegativeInteger"/>
      <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
      <xs:attribute name="disabled" type="xs:nonNegativeInteger"/>
      <xs:attribute name="time" type="seconds"/>
      <xs:attribute name="timestamp" type="xs:dateTime"/>
      <xs:attribute name="hostname" type="xs:string"/>
      <xs:attribute name="id" type="xs:string"/>
      <xs:attribute name="package" type="xs:string"/>
      <xs:attribute name="file" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="testsuites">
    <xs:complexType>
      <xs:sequence><xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
      <xs:attribute name="name" type="xs:string"/>
      <xs:attribute name="tests" type="xs:nonNegativeInteger"/>
      <xs:attribute name="failures" type="xs:nonNegativeInteger"/>
      <xs:attribute name="errors" type="xs:nonNegativeInteger"/>
      <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
      <xs:attribute name="disabled" type="xs:nonNegativeInteger"/>
      <xs:attribute name="time" type="seconds"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(JUNIT_XSD)


def test_the_schema_rejects_what_it_should(schema):
    assert not schema.is_valid("<testsuites><testsuite/></testsuites>")  # a suite needs name and tests
    assert not schema.is_valid('<testsuites><testsuite name="s" tests="-1"/></testsuites>')
    assert not schema.is_valid('<testsuites><testsuite name="s" tests="1"><testcase/></testsuite></testsuites>')
    assert schema.is_valid('<testsuites><testsuite name="s" tests="1"><testcase name="c"><failure message="m">x'
                           '</failure></testcase></testsuite></testsuites>')


def test_junit_output_validates_and_counts(schema, tmp_path, tmp_path_factory, capsys):
    specs = []
    for name, body in {
        "good": "",
        "strict": "[expect]\nmin_paths = 3\nstatement = 'bandwidth'\n",
        "odd": '[versions.">=2.0"]\nskip = "not in 2.0"\n[expect]\nmax_paths = 0\n',
    }.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(f'name = "{name}"\nfrom = "qmp:migrate"\nto = "assign:threshold_size"\n' + textwrap.dedent(body))
        specs.append(str(path))
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "broken"\nfrom = "qmp:migrate"\nto = "assign:threshold_size"\n[options]\nvia = ["nowhere"]\n')
    specs.append(str(broken))
    junit = tmp_path / "out.xml"
    cache = tmp_path_factory.mktemp("junit-cache")
    code = run_cli(["check", *specs, "--tree", str(V1), "--tree", str(V2), "--junit", str(junit), "--cache", str(cache)])
    assert code == 1
    schema.validate(str(junit))
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("8", "2", "2", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["chaintrace check 1.0.0", "chaintrace check 2.0.0"]
    assert [p.get("value") for p in suites[1].find("properties")] == [str(V2), "2.0.0"]
    cases = {case.get("name"): case for case in suites[1].findall("testcase")}
    assert cases["good"].find("failure") is None and cases["good"].find("system-out") is not None
    failure = cases["strict"].find("failure")
    assert failure.get("type") == "min_paths" and failure.get("message") == "min_paths: 2 path(s), fewer than 3"
    assert "statement: no reached target statement matches /bandwidth/" in failure.text
    assert cases["odd"].find("skipped").get("message") == "skipped: not in 2.0"
    assert "nowhere" in cases["broken"].find("error").get("message")
    v1_cases = {case.get("name"): case for case in suites[0].findall("testcase")}
    assert v1_cases["odd"].find("failure").get("type") == "max_paths"
    assert cases["good"].get("classname") == "chaintrace.regress.check.2_0_0"
