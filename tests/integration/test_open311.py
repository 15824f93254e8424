"""Open311 GeoReport v2 on the real gateway (/open311/v2/).

services.json|xml and requests.json|xml parse with Python's json and
xml.etree and carry the spec's required fields; a POST requests.json with a
reporter's token opens an incident that the ledger commits, the same POST
again names the same service_request_id and adds no ledger row (intake's
(device_id, sequence) idempotency); bad POSTs get 400 with an Open311 error
document and add nothing; without a token 401, with a reader's token 403,
neither adds anything.
"""

import json
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402

BASE = "/open311/v2/"
CODES = ["natural_disaster", "accident_disaster", "public_health", "social_safety",
         "property_service", "neighbour_dispute", "latent_hazard"]
SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords",
                  "group"]
REQUEST_FIELDS = ["service_request_id", "status", "service_name", "service_code", "description",
                  "requested_datetime", "updated_datetime", "address", "address_id", "media_url"]
HOSTILE = "</description><script>alert(\"x\")</script> & 'q' 燃气味"


def reported_rows(st, incident=None):
    sql = "select count(*) from ledger where type = 'reported'"
    if incident:
        sql += " and incident_id = '%s'" % incident
    return int(st.scalar(sql))


def get_json(st, path, token):
    status, headers, body = st.http("GET", BASE + path, token=token)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    return status, headers, doc, body


def get_xml(st, path, token):
    status, headers, body = st.http("GET", BASE + path, token=token)
    try:
        doc = ET.fromstring(body)
    except ET.ParseError:
        doc = None
    return status, headers, doc, body


def is_error_doc(doc, code):
    return (isinstance(doc, list) and len(doc) == 1 and isinstance(doc[0], dict)
            and doc[0].get("code") == code and isinstance(doc[0].get("description"), str)
            and doc[0]["description"] != "")


def is_error_xml(root, code):
    if root is None or root.tag != "errors":
        return False
    errs = root.findall("error")
    return (len(errs) == 1 and errs[0].findtext("code") == str(code)
            and (errs[0].findtext("description") or "") != "")


def body(st, c):
    reader = st.token("o311-reader", role="reader")
    reporter = st.token("o311-reporter", role="reporter")
    device = "o311-app-%d" % os.getpid()

    # ---- services
    status, headers, doc, raw = get_json(st, "services.json", reader)
    c.eq(status, 200, "services.json answers 200")
    c.check(headers.get("content-type", "").startswith("application/json"),
            "services.json is application/json", headers.get("content-type"))
    c.check(isinstance(doc, list) and sorted(s.get("service_code") for s in doc) == sorted(CODES),
            "services.json lists one service per category", raw[:300])
    c.check(isinstance(doc, list) and all(all(k in s for k in SERVICE_FIELDS) for s in doc),
            "every service carries the required fields")
    c.check(isinstance(doc, list) and all(s.get("metadata") is True and s.get("type") == "realtime"
                                          for s in doc),
            "services have metadata and are realtime")

    status, headers, root, raw = get_xml(st, "services.xml", reader)
    c.eq(status, 200, "services.xml answers 200")
    c.check("xml" in headers.get("content-type", ""), "services.xml is XML",
            headers.get("content-type"))
    c.check(root is not None and root.tag == "services"
            and sorted(x.findtext("service_code") for x in root.findall("service"))
            == sorted(CODES),
            "services.xml parses and lists every category", raw[:300])
    c.check(root is not None and all(s.find(k) is not None for s in root.findall("service")
                                     for k in SERVICE_FIELDS),
            "every XML service carries the required fields")

    status, _, doc, raw = get_json(st, "services/accident_disaster.json", reader)
    c.eq(status, 200, "the service definition answers 200")
    attrs = {a.get("code"): a for a in doc.get("attributes", [])} if isinstance(doc, dict) else {}
    c.check(attrs.get("sequence", {}).get("required") is True
            and [v.get("key") for v in attrs.get("severity", {}).get("values", [])]
            == ["I", "II", "III", "IV"],
            "the definition names sequence (required) and severity I..IV", raw[:400])
    status, _, doc, _ = get_json(st, "services/fire.json", reader)
    c.check(status == 404 and is_error_doc(doc, 404), "an unknown service code is a 404 document",
            (status, doc))

    # ---- a good POST, then the same POST again
    form = {"service_code": "accident_disaster", "address_id": "zhouji-asia-bay",
            "device_id": device, "attribute[sequence]": "1", "attribute[kind]": "gas_leak",
            "attribute[severity]": "III", "attribute[building]": "12", "attribute[floor]": "9",
            "lat": "30.6868", "long": "103.8704", "description": HOSTILE}
    want_id = S.incident_id(device, 1)
    before = reported_rows(st)
    status, headers, raw = st.http("POST", BASE + "requests.json", token=reporter, data=form)
    doc = json.loads(raw) if raw.startswith(b"[") else None
    c.eq(status, 201, "a good POST is 201 Created")
    c.check(isinstance(doc, list) and len(doc) == 1
            and doc[0].get("service_request_id") == want_id and doc[0].get("service_notice"),
            "it names the incident (device_id, sequence) derive", raw)
    c.check(S.wait_until(lambda: reported_rows(st, want_id) == 1, 10),
            "the incident is in the ledger")
    c.eq(reported_rows(st), before + 1, "one ledger row was added")
    row = st.sql("select incident_id, category, severity, compound_id from incidents "
                 "where incident_id = '%s'" % want_id)
    c.eq(row, [[want_id, "accident_disaster", "III", "zhouji-asia-bay"]],
         "the incidents view shows what was posted")

    status, _, raw = st.http("POST", BASE + "requests.json", token=reporter, data=form)
    doc = json.loads(raw) if raw.startswith(b"[") else None
    c.eq(status, 200, "the same POST again is 200")
    c.check(isinstance(doc, list) and len(doc) == 1 and doc[0].get("service_request_id") == want_id,
            "and names the same service_request_id", raw)
    c.eq(reported_rows(st), before + 1, "the repeat added no ledger row")

    # the same key with other words is still the same report (the contract's idempotency)
    other = dict(form, description="something else entirely")
    status, _, raw = st.http("POST", BASE + "requests.json", token=reporter, data=other)
    c.check(status == 200 and want_id.encode() in raw,
            "the same (device_id, sequence) with another description is the same request",
            (status, raw))
    c.eq(reported_rows(st), before + 1, "and adds no ledger row")

    # ---- requests
    def listed():
        s, _, d, _ = get_json(st, "requests.json", reader)
        return d if s == 200 and isinstance(d, list) and any(
            r.get("service_request_id") == want_id for r in d) else None
    doc = S.wait_until(listed, 10)
    c.check(doc, "requests.json lists the new request")
    mine = [r for r in (doc or []) if r.get("service_request_id") == want_id]
    r = mine[0] if mine else {}
    c.check(all(k in r for k in REQUEST_FIELDS), "the request carries the required fields",
            sorted(r))
    c.eq(r.get("status"), "open", "it is open")
    c.eq(r.get("service_code"), "accident_disaster", "its service_code is the category")
    c.eq(r.get("address_id"), "zhouji-asia-bay", "its address_id is the compound")
    c.eq(r.get("description"), HOSTILE, "a hostile description survives JSON intact")
    c.check(abs(float(r.get("lat", 0)) - 30.6868) < 1e-6
            and abs(float(r.get("long", 0)) - 103.8704) < 1e-6,
            "lat and long come back", (r.get("lat"), r.get("long")))

    status, headers, root, raw = get_xml(st, "requests.xml", reader)
    c.eq(status, 200, "requests.xml answers 200")
    reqs = root.findall("request") if root is not None and root.tag == "service_requests" else []
    mine = [x for x in reqs if x.findtext("service_request_id") == want_id]
    c.check(len(mine) == 1, "requests.xml parses and lists the request", raw[:300])
    c.check(mine and all(mine[0].find(k) is not None for k in REQUEST_FIELDS),
            "the XML request carries the required fields")
    c.eq(mine[0].findtext("description") if mine else None, HOSTILE,
         "a hostile description survives XML intact")

    status, _, doc, raw = get_json(st, "requests/%s.json" % want_id, reader)
    c.check(status == 200 and isinstance(doc, list) and len(doc) == 1
            and doc[0].get("service_request_id") == want_id,
            "requests/{id}.json is an array of one", (status, raw[:200]))
    status, _, root, raw = get_xml(st, "requests/%s.xml" % want_id, reader)
    c.check(status == 200 and root is not None and len(root.findall("request")) == 1,
            "requests/{id}.xml holds one request", (status, raw[:200]))
    status, _, doc, _ = get_json(st, "requests/inc-00000000000000000000.json", reader)
    c.check(status == 404 and is_error_doc(doc, 404), "an unknown request is a 404 document",
            (status, doc))

    def ids(path):
        s, _, d, _ = get_json(st, path, reader)
        return s, [x.get("service_request_id") for x in d] if isinstance(d, list) else None
    s, got = ids("requests.json?status=closed")
    c.check(s == 200 and want_id not in (got or []), "status=closed leaves it out", (s, got))
    s, got = ids("requests.json?status=open&service_code=accident_disaster,latent_hazard")
    c.check(s == 200 and want_id in (got or []), "status=open&service_code=... keeps it", (s, got))
    s, got = ids("requests.json?service_code=property_service")
    c.check(s == 200 and want_id not in (got or []), "another service_code leaves it out")
    s, got = ids("requests.json?start_date=2000-01-01T00:00:00Z"
                 "&end_date=2000-02-01T00:00:00%2B08:00")
    c.check(s == 200 and got == [], "a window in 2000 is empty", (s, got))
    s, got = ids("requests.json?service_request_id=%s&status=closed" % want_id)
    c.check(s == 200 and got == [want_id], "service_request_id overrides the other filters",
            (s, got))
    for q in ("status=pending", "service_code=fire", "start_date=yesterday",
              "end_date=2026-01-01", "service_request_id=a%20b"):
        s, _, d, raw = get_json(st, "requests.json?" + q, reader)
        c.check(s == 400 and is_error_doc(d, 400), "requests.json?%s is a 400 document" % q,
                (s, raw[:200]))
    s, _, root, raw = get_xml(st, "requests.xml?status=pending", reader)
    c.check(s == 400 and is_error_xml(root, 400), "a bad filter on requests.xml is an XML error",
            (s, raw[:200]))

    # ---- bad POSTs add nothing
    count = reported_rows(st)
    bad = [
        ("no sequence", {k: v for k, v in form.items() if k != "attribute[sequence]"},
         "attribute[sequence]"),
        ("sequence 0", dict(form, **{"attribute[sequence]": "0"}), "attribute[sequence]"),
        ("unknown compound", dict(form, address_id="nowhere", **{"attribute[sequence]": "2"}),
         "address_id"),
        ("bad severity", dict(form, **{"attribute[severity]": "V", "attribute[sequence]": "3"}),
         "attribute[severity]"),
        ("device_id too long", dict(form, device_id="d" * 65, **{"attribute[sequence]": "4"}),
         "device_id"),
        ("unknown service", dict(form, service_code="fire", **{"attribute[sequence]": "5"}),
         "service_code"),
        ("lat out of range", dict(form, lat="95", **{"attribute[sequence]": "6"}), "lat"),
        ("no device", {k: v for k, v in form.items() if k != "device_id"}, "device_id"),
    ]
    for name, f, field in bad:
        s, _, raw = st.http("POST", BASE + "requests.json", token=reporter, data=f)
        d = json.loads(raw) if raw.startswith(b"[") else None
        c.check(s == 400 and is_error_doc(d, 400) and field in d[0]["description"],
                "a POST with %s is a 400 naming %s" % (name, field), (s, raw[:300]))
    s, _, raw = st.http("POST", BASE + "requests.xml", token=reporter,
                        data=dict(form, **{"attribute[sequence]": "0"}))
    c.check(s == 400 and is_error_xml(ET.fromstring(raw) if raw.startswith(b"<") else None, 400),
            "a bad POST to requests.xml is an XML error", (s, raw[:300]))

    fresh = dict(form, **{"attribute[sequence]": "7"})
    s, _, raw = st.http("POST", BASE + "requests.json", data=fresh)
    c.eq(s, 401, "a POST without a token is 401")
    s, _, raw = st.http("POST", BASE + "requests.json", token=reader, data=fresh)
    c.eq(s, 403, "a POST with a reader's token is 403")
    c.eq(reported_rows(st, S.incident_id(device, 7)), 0, "neither opened the incident")
    c.eq(reported_rows(st), count, "no bad POST added a ledger row")

    # ---- Open311's own way to pass the key, and the XML answer
    s, _, raw = st.http("POST", BASE + "requests.xml", data=dict(fresh, api_key=reporter))
    root = ET.fromstring(raw) if raw.startswith(b"<") else None
    c.check(s == 201 and root is not None and root.tag == "service_requests"
            and root.findtext("request/service_request_id") == S.incident_id(device, 7),
            "POST requests.xml with api_key answers in XML", (s, raw[:300]))
    c.check(S.wait_until(lambda: reported_rows(st, S.incident_id(device, 7)) == 1, 10),
            "and the incident is in the ledger")


if __name__ == "__main__":
    S.main(body, "open311", daemons=("ledger", "intake", "router", "gateway"))
