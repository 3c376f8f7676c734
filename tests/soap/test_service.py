"""The SOAP API over real HTTP: a zeep client reads the served WSDL and calls every operation;
bad input and hostile XML each get a fault with a stable code, and nothing is stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
import zeep
from lxml import etree
from sqlalchemy import func, select

from hub import runtime
from hub.models import Fact, Profile, RuleFiring
from tests.conftest import run_jobs

TNS = "urn:contact-hub:soap:1"
XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
OPERATIONS = {
    "Database_createProfile",
    "Database_updateProfiles",
    "Database_searchProfiles",
    "Database_fields",
    "Profile_get",
    "Profile_fields",
    "Profile_updateFields",
    "Profile_addTags",
    "Profile_removeTags",
    "Profile_unsubscribe",
    "Profile_remove",
    "Profile_postFact",
}


@pytest.fixture
def soap(hub_url: str, api_key: str) -> Any:
    """A zeep client built from the served WSDL, sending the ApiKey header on every call."""
    client = zeep.Client(f"{hub_url}/soap?wsdl")
    header = client.get_element(f"{{{TNS}}}ApiKey")(key=api_key)
    client.set_default_soapheaders([header])
    return client.service


def count(app: Any, model: Any) -> int:
    with runtime.of(app).db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def fields(items: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {"Field": [{"name": n, "value": v, "type": t} for n, v, t in items]}


def reqs(*items: tuple[str, str, str, bool]) -> dict[str, Any]:
    return {
        "Requirement": [
            {"fieldname": f, "operator": o, "value": v, "casesensitive": c} for f, o, v, c in items
        ]
    }


def as_dict(profile: Any) -> dict[str, Any]:
    """A SOAP profile's typed fields as Python values, to compare."""
    out: dict[str, Any] = {}
    for f in (profile.fields.Field if profile.fields else []) or []:
        out[f.name] = {
            "integer": int,
            "number": float,
            "boolean": lambda v: v == "true",
            "null": lambda v: None,
        }.get(f.type, str)(f.value)
    return out


def test_wsdl_is_served_valid_and_lists_every_operation(hub_url: str) -> None:
    response = requests.get(f"{hub_url}/soap?wsdl", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    doc = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False))
    assert doc.tag == f"{{{WSDL}}}definitions"
    operations = {o.get("name") for o in doc.iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation")}
    assert operations == OPERATIONS
    # the types are a valid XML Schema, and a typed request validates against it
    (schema_el,) = doc.iterfind(f"{{{WSDL}}}types/{{{XS}}}schema")
    standalone = etree.Element(schema_el.tag, schema_el.attrib, nsmap=schema_el.nsmap)
    standalone.extend(copy.deepcopy(list(schema_el)))  # keep the QNames' namespaces in scope
    schema = etree.XMLSchema(standalone)
    good = etree.fromstring(f'<Profile_get xmlns="{TNS}"><id>7</id></Profile_get>')
    bad = etree.fromstring(f'<Profile_get xmlns="{TNS}"><id>seven</id></Profile_get>')
    assert schema.validate(good)
    assert not schema.validate(bad)
    address = doc.find(f".//{{{WSDL}}}port/{{http://schemas.xmlsoap.org/wsdl/soap/}}address")
    assert address.get("location") == f"{hub_url}/soap"


def test_every_operation_through_zeep(soap: Any, app: Any) -> None:
    created = soap.Database_createProfile(
        email="Ann@Example.com",
        fields=fields([("city", "Delft", "string"), ("age", "41", "integer")]),
        tags={"string": ["new"]},
    )
    pid = created.id
    assert created.email == "ann@example.com" and created.status == "unconfirmed"
    assert as_dict(created) == {"age": 41, "city": "Delft"}
    assert created.tags.string == ["new"]

    got = soap.Profile_get(id=pid)
    assert got.email == "ann@example.com" and as_dict(got) == {"age": 41, "city": "Delft"}

    updated = soap.Profile_updateFields(
        id=pid, fields=fields([("vip", "true", "boolean"), ("score", "2.5", "number")])
    )
    assert as_dict(updated) == {"age": 41, "city": "Delft", "vip": True, "score": 2.5}
    assert {f.name: f.type for f in soap.Profile_fields(id=pid)} == {
        "age": "integer",
        "city": "string",
        "score": "number",
        "vip": "boolean",
    }

    assert soap.Profile_addTags(id=pid, tags={"string": ["buyer", "new"]}).tags.string == [
        "new",
        "buyer",
    ]
    assert soap.Profile_removeTags(id=pid, tags={"string": ["new"]}).tags.string == ["buyer"]

    found = soap.Database_searchProfiles(requirements=reqs(("city", "=", "delft", False)))
    assert (found.total, found.length, [p.id for p in found.profile.Profile]) == (1, 1, [pid])

    known = {(f.name, f.kind) for f in soap.Database_fields()}
    assert {("email", "text"), ("tags", "tags"), ("age", "custom"), ("vip", "custom")} <= known

    fact = soap.Profile_postFact(
        id=pid, type="order.placed", data=fields([("total", "80", "integer")]), source_id="o-1"
    )
    assert fact.status == "accepted"
    again = soap.Profile_postFact(id=pid, type="order.placed", source_id="o-1")
    assert (again.id, again.status) == (fact.id, "duplicate")

    assert soap.Profile_unsubscribe(id=pid).status == "unsubscribed"

    upserted = soap.Database_updateProfiles(
        requirements=reqs(("email", "=", "bob@example.com", False)),
        fields=fields([("city", "Oslo", "string")]),
        create=True,
    )
    assert upserted.created is True and upserted.length == 1
    bob = upserted.profile.Profile[0]
    assert (bob.email, as_dict(bob)) == ("bob@example.com", {"city": "Oslo"})

    assert soap.Profile_remove(id=pid) is True
    with pytest.raises(zeep.exceptions.Fault) as gone:
        soap.Profile_get(id=pid)
    assert gone.value.code.endswith("Client.NotFound")
    assert gone.value.message == f"id: no profile with id {pid}"

    with runtime.of(app).db.session() as session:
        stored = session.execute(select(Fact.type, Fact.source).order_by(Fact.id)).all()
    assert stored == [
        ("profile.created", "soap"),
        ("profile.updated", "soap"),
        ("profile.tagged", "soap"),
        ("profile.tagged", "soap"),
        ("order.placed", "soap"),
        ("profile.unsubscribed", "soap"),
        ("profile.created", "soap"),
        ("profile.deleted", "soap"),
    ]


def test_upsert_creates_then_updates(soap: Any, app: Any) -> None:
    key = reqs(("email", "=", "Cem@Example.com", False))
    first = soap.Database_updateProfiles(
        requirements=key, fields=fields([("city", "Ghent", "string")]), create=True
    )
    second = soap.Database_updateProfiles(
        requirements=key, fields=fields([("city", "Leuven", "string")]), create=True
    )
    assert (first.created, second.created) == (True, False)
    assert first.profile.Profile[0].id == second.profile.Profile[0].id
    assert as_dict(second.profile.Profile[0]) == {"city": "Leuven"}
    assert count(app, Profile) == 1
    # without create, no match means nothing happens
    none = soap.Database_updateProfiles(
        requirements=reqs(("email", "=", "nobody@example.com", False)),
        fields=fields([("city", "Paris", "string")]),
        create=False,
    )
    assert (none.created, none.length) == (False, 0)
    assert count(app, Profile) == 1 and count(app, Fact) == 2


def test_search_operators_case_and_paging(soap: Any) -> None:
    for i, (city, age) in enumerate(
        [("Delft", 30), ("delft", 41), ("Den Haag", 17), ("Utrecht", 65), ("Delfzijl", 41)]
    ):
        soap.Database_createProfile(
            email=f"p{i}@example.com",
            fields=fields([("city", city, "string"), ("age", str(age), "integer")]),
        )

    def emails(*r: tuple[str, str, str, bool], start: int = 0, length: int = 100) -> list[str]:
        page = soap.Database_searchProfiles(requirements=reqs(*r), start=start, length=length)
        return [p.email[:2] for p in (page.profile.Profile if page.profile else [])]

    assert emails(("city", "=", "Delft", True)) == ["p0"]
    assert emails(("city", "=", "Delft", False)) == ["p0", "p1"]
    assert emails(("city", "!=", "delft", False)) == ["p2", "p3", "p4"]
    assert emails(("city", "<>", "delft", True)) == ["p0", "p2", "p3", "p4"]
    assert emails(("age", ">", "40", False)) == ["p1", "p3", "p4"]
    assert emails(("age", ">=", "41", False)) == ["p1", "p3", "p4"]
    assert emails(("age", "<", "30", False)) == ["p2"]
    assert emails(("age", "<=", "30", False)) == ["p0", "p2"]
    assert emails(("city", "LIKE", "del%", False)) == ["p0", "p1", "p4"]
    assert emails(("city", "like", "Del%", True)) == ["p0", "p4"]
    assert emails(("city", "NOT LIKE", "d%", False)) == ["p3"]
    assert emails(("city", "LIKE", "del%", False), ("age", "=", "41", False)) == ["p1", "p4"]
    assert emails(("email", "=", "P3@EXAMPLE.COM", False)) == ["p3"]
    # paging: total counts every match, length what this page holds
    page = soap.Database_searchProfiles(requirements=None, start=1, length=2)
    assert (page.start, page.length, page.total) == (1, 2, 5)
    assert [p.email[:2] for p in page.profile.Profile] == ["p1", "p2"]
    assert emails(start=4, length=2) == ["p4"]
    assert emails(start=9) == []


def test_rules_fire_on_soap_updates(soap: Any, app: Any, hub_runtime: Any) -> None:
    (hub_runtime.settings.rules_dir / "soap.yaml").write_text(
        """
rules:
  - name: big-spender-from-soap
    when:
      fact: profile.updated
      all:
        - fact.source: soap
        - profile.fields.spend: {gte: 1000}
    then:
      - update_profile: {add_tags: [vip]}
"""
    )
    pid = soap.Database_createProfile(email="dee@example.com").id
    soap.Profile_updateFields(id=pid, fields=fields([("spend", "500", "integer")]))
    run_jobs(hub_runtime)
    assert count(app, RuleFiring) == 0  # 500 is not enough
    upsert = soap.Database_updateProfiles(
        requirements=reqs(("email", "=", "dee@example.com", False)),
        fields=fields([("spend", "1500", "integer")]),
        create=False,
    )
    assert as_dict(upsert.profile.Profile[0]) == {"spend": 1500}  # read-your-write, at once
    run_jobs(hub_runtime)
    with runtime.of(app).db.session() as session:
        firings = session.execute(
            select(RuleFiring.rule_name, Fact.type, Fact.source, Fact.data).join(Fact)
        ).all()
        profile = session.get(Profile, pid)
        statuses = set(session.scalars(select(Fact.status)))
    assert firings == [
        (
            "big-spender-from-soap",
            "profile.updated",
            "soap",
            {"fields": {"spend": 1500}, "changed": ["spend"]},
        )
    ]
    assert profile.tags == ["vip"]
    assert statuses == {"evaluated"}
    assert soap.Profile_get(id=pid).tags.string == ["vip"]


# -- bad input: a fault each, with a stable code and the field named; nothing stored ------


def envelope(body: str, key: str | None) -> bytes:
    header = (
        f"<soap:Header><hub:ApiKey><hub:key>{key}</hub:key></hub:ApiKey></soap:Header>"
        if key is not None
        else ""
    )
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:hub="{TNS}">{header}<soap:Body>{body}</soap:Body></soap:Envelope>'
    ).encode()


CREATE = (
    "<hub:Database_createProfile><hub:email>eve@example.com</hub:email>"
    "<hub:fields><hub:Field><hub:name>{name}</hub:name><hub:value>{value}</hub:value>"
    "<hub:type>{type}</hub:type></hub:Field></hub:fields></hub:Database_createProfile>"
)
UPSERT_UNKNOWN = (
    "<hub:Database_updateProfiles><hub:requirements><hub:Requirement>"
    "<hub:fieldname>colour</hub:fieldname><hub:value>red</hub:value></hub:Requirement>"
    "</hub:requirements><hub:fields><hub:Field><hub:name>x</hub:name><hub:value>1</hub:value>"
    "</hub:Field></hub:fields><hub:create>false</hub:create></hub:Database_updateProfiles>"
)


def post(hub_url: str, data: bytes) -> tuple[str, str]:
    response = requests.post(
        f"{hub_url}/soap",
        data=data,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=30,
    )
    assert response.status_code in (413, 500), response.text
    assert "Traceback" not in response.text
    doc = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False))
    code = doc.findtext(".//faultcode").split(":", 1)[1]
    return code, doc.findtext(".//faultstring")


BAD_REQUESTS: list[tuple[str, str, str]] = [
    ("<hub:Database_dropAll/>", "Client.UnknownOperation", "Database_dropAll: no such"),
    (
        UPSERT_UNKNOWN,
        "Client.UnknownField",
        "requirements[0].fieldname: unknown field 'colour'",
    ),
    (
        CREATE.format(name="age", value="old", type="integer"),
        "Client.InvalidValue",
        "fields[0].value: 'old' is not an integer",
    ),
    (
        CREATE.format(name="email", value="x", type="string"),
        "Client.ReservedField",
        "fields.email",
    ),
    (
        CREATE.format(name="age", value="1", type="float"),
        "Client.SchemaValidationError",
        "{urn:contact-hub:soap:1}type",
    ),
    (
        "<hub:Profile_get><hub:id>abc</hub:id></hub:Profile_get>",
        "Client.SchemaValidationError",
        "'abc' is not a valid value of the atomic type 'xs:long'",
    ),
    (
        "<hub:Database_createProfile/>",
        "Client.SchemaValidationError",
        "Expected is ( {urn:contact-hub:soap:1}email )",
    ),
    (
        "<hub:Database_createProfile><hub:email>not-an-email</hub:email>"
        "</hub:Database_createProfile>",
        "Client.InvalidValue",
        "email: 'not-an-email'",
    ),
    (
        "<hub:Database_searchProfiles><hub:requirements><hub:Requirement>"
        "<hub:fieldname>email</hub:fieldname><hub:value>a</hub:value>"
        "<hub:operator>~</hub:operator></hub:Requirement></hub:requirements>"
        "</hub:Database_searchProfiles>",
        "Client.InvalidOperator",
        "requirements[0].operator: unknown operator '~'",
    ),
]


def test_bad_request_is_a_fault_naming_the_field(hub_url: str, api_key: str, app: Any) -> None:
    got = []
    for body, _code, says in BAD_REQUESTS:
        code, message = post(hub_url, envelope(body, api_key))
        got.append((code, says if says in message else message))
    assert got == [(code, says) for _body, code, says in BAD_REQUESTS]
    assert count(app, Fact) == 0 and count(app, Profile) == 0


@pytest.mark.parametrize(
    ("key", "code"),
    [(None, "Client.MissingApiKey"), ("hub_wrongwrongwrong", "Client.InvalidApiKey")],
)
def test_api_key_header_is_required(hub_url: str, app: Any, key: str | None, code: str) -> None:
    got, message = post(hub_url, envelope(CREATE.format(name="a", value="1", type="string"), key))
    assert got == code and message.startswith("ApiKey: ")
    assert count(app, Fact) == 0 and count(app, Profile) == 0


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    + "]>"
).replace("&lol0;", "&lol;")
ATTACKS = {
    "billion laughs": BILLION_LAUGHS.encode()
    + envelope("<hub:Profile_get><hub:id>&lol9;</hub:id></hub:Profile_get>", "k"),
    "xxe": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + envelope(
        "<hub:Database_createProfile><hub:email>&xxe;</hub:email></hub:Database_createProfile>", "k"
    ),
    "external dtd": b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">'
    + envelope("<hub:Database_fields/>", "k"),
    "parameter entity": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM '
    b'"file:///etc/passwd"> %p;]>' + envelope("<hub:Database_fields/>", "k"),
    "deeply nested": envelope(
        "<hub:Database_createProfile><hub:email>a@b.cd</hub:email>"
        + "<x>" * 200
        + "</x>" * 200
        + "</hub:Database_createProfile>",
        "k",
    ),
    "malformed": envelope("<hub:Database_fields>", "k"),
    "not xml": b"email=a@b.cd",
    "empty": b"",
}


REFUSALS: list[tuple[str, str]] = [
    ("billion laughs", "Client.XmlForbidden"),
    ("xxe", "Client.XmlForbidden"),
    ("external dtd", "Client.XmlForbidden"),
    ("parameter entity", "Client.XmlForbidden"),
    ("deeply nested", "Client.XmlTooDeep"),
    ("malformed", "Client.MalformedXml"),
    ("not xml", "Client.MalformedXml"),
    ("empty", "Client.MalformedXml"),
]


def test_hostile_or_broken_xml_is_refused_before_parsing(
    hub_url: str, app: Any, api_key: str
) -> None:
    got = []
    for attack, _code in REFUSALS:
        body = ATTACKS[attack].replace(
            b"<hub:key>k</hub:key>", f"<hub:key>{api_key}</hub:key>".encode()
        )
        code, message = post(hub_url, body)
        assert "root:" not in message  # nothing of /etc/passwd comes back
        got.append((attack, code))
    assert got == REFUSALS
    assert count(app, Fact) == 0 and count(app, Profile) == 0


def test_oversized_body_is_refused_unread(hub_url: str, app: Any, api_key: str) -> None:
    limit = runtime.of(app).settings.max_body_bytes
    padding = "<!--" + "x" * limit + "-->"
    got, message = post(hub_url, envelope(padding + "<hub:Database_fields/>", api_key))
    assert (got, message) == ("Client.XmlTooLarge", f"request body over {limit} bytes")
    assert count(app, Fact) == 0


def test_soap_12_serves_the_same_operations(hub_url: str, api_key: str, app: Any) -> None:
    client = zeep.Client(f"{hub_url}/soap12?wsdl")
    client.set_default_soapheaders([client.get_element(f"{{{TNS}}}ApiKey")(key=api_key)])
    assert client.service._binding.__class__.__name__ == "Soap12Binding"  # noqa: SLF001
    made = client.service.Database_createProfile(email="ida@example.com")
    assert client.service.Profile_get(id=made.id).email == "ida@example.com"
    with pytest.raises(zeep.exceptions.Fault) as fault:
        client.service.Database_searchProfiles(requirements=reqs(("colour", "=", "red", False)))
    assert fault.value.code.endswith("Sender")
    assert [s.localname for s in fault.value.subcodes] == ["UnknownField"]
    assert fault.value.message.startswith("requirements[0].fieldname: unknown field 'colour'")
    # hostile XML is refused before parsing with a SOAP 1.2 fault as well
    response = requests.post(
        f"{hub_url}/soap12",
        data=ATTACKS["xxe"].replace(
            b"<hub:key>k</hub:key>", f"<hub:key>{api_key}</hub:key>".encode()
        ),
        headers={"Content-Type": "application/soap+xml; charset=utf-8"},
        timeout=30,
    )
    doc = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False))
    ns = {"env": "http://www.w3.org/2003/05/soap-envelope"}
    assert doc.findtext(".//env:Code/env:Value", namespaces=ns) == "env:Sender"
    assert doc.findtext(".//env:Subcode/env:Value", namespaces=ns) == "XmlForbidden"
    assert count(app, Profile) == 1
