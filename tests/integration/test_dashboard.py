"""Issue 5's dashboard in a real browser: headless Chromium against the real stack.

The page opens with a coordinator token in the URL fragment and goes live on
the gateway's event stream. A report sent from a device must appear as a row
within a second of its ReportAck, coloured by its severity, with a deadline
counting down once routed. Acknowledge, note and planned-work actions clicked
on the page must commit their events in the ledger with the coordinator as
actor; closing without a reason is refused on the page. Filters, grouping,
overdue marking (the router restarted with time running 3000x) and the
Chinese labels are checked on the DOM. A reader token is offered no actions
(and the API refuses its POST with 403); a refused token brings back the
token form. The browser console must stay free of errors throughout.

Chromium, chromedriver and python3-selenium come from Debian
(deploy/install-deps.sh); without them this test fails, it does not skip.
"""

import json
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import stack as S  # noqa: E402
from stack import event_pb2, report_pb2  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MAX_LATENCY = 1.0  # seconds from the ReportAck to the row in the DOM
ORANGE = "rgb(239, 108, 0)"  # style.css --sev-II
RED = "rgb(198, 40, 40)"  # style.css --sev-I

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    SELENIUM_ERROR = None
except ImportError as e:  # reported as a failed check by main()
    SELENIUM_ERROR = e

COUNTDOWN = re.compile(r"^-?(\d+:)?\d\d:\d\d$")


def seconds_of(text):
    """'mm:ss' or 'h:mm:ss' (maybe negative) as seconds."""
    s = 0
    for p in text.lstrip("-").split(":"):
        s = s * 60 + int(p)
    return -s if text.startswith("-") else s


def events(st, type_, incident=None):
    """Decoded ledger events of one type (and incident), in position order."""
    sql = "select encode(payload, 'hex') from ledger where type = '%s'" % type_
    if incident is not None:
        sql += " and incident_id = '%s'" % incident
    out = []
    for (hexed,) in st.sql(sql + " order by position"):
        ev = event_pb2.Event()
        ev.ParseFromString(bytes.fromhex(hexed))
        out.append(ev)
    return out


def row_of(incident):
    return 'li.row[data-incident="%s"]' % incident


class Page:
    """The browser, with the few moves the test makes. Every lookup tolerates the page
    redrawing an element between finding and using it."""

    def __init__(self, st):
        opts = Options()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1440,1000", "--lang=en-US", "--no-first-run",
                  "--user-data-dir=" + os.path.join(st.tmp, "chromium")):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)

    def quit(self):
        self.d.quit()

    def all(self, sel):
        return self.d.find_elements(By.CSS_SELECTOR, sel)

    def has(self, sel):
        return bool(self.all(sel))

    def text(self, sel):
        """The text of the first element matching sel, or None."""
        try:
            els = self.all(sel)
            return els[0].text if els else None
        except StaleElementReferenceException:
            return None

    def attr(self, sel, name):
        try:
            els = self.all(sel)
            return els[0].get_attribute(name) if els else None
        except StaleElementReferenceException:
            return None

    def click(self, sel, timeout=5.0):
        """Clicks the first visible, enabled element matching sel."""
        def attempt():
            try:
                els = self.all(sel)
                if not els or not els[0].is_displayed() or not els[0].is_enabled():
                    return False
                els[0].click()
                return True
            except StaleElementReferenceException:
                return False
        return S.wait_until(attempt, timeout)

    def type(self, sel, text, clear=False, timeout=5.0):
        def attempt():
            try:
                els = self.all(sel)
                if not els:
                    return False
                if clear:
                    els[0].clear()
                els[0].send_keys(text)
                return True
            except StaleElementReferenceException:
                return False
        return S.wait_until(attempt, timeout)

    def select(self, sel, value, timeout=5.0):
        def attempt():
            try:
                els = self.all(sel)
                if not els:
                    return False
                Select(els[0]).select_by_value(value)
                return True
            except StaleElementReferenceException:
                return False
        return S.wait_until(attempt, timeout)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def border_colour(self, sel):
        return self.js("var e = document.querySelector(arguments[0]);"
                       "return e && getComputedStyle(e).borderLeftColor;", sel)

    def live(self):
        return self.has('body[data-ready="1"] #conn[data-state="live"]')

    def severe_logs(self, allow=()):
        """SEVERE console entries since the last call, minus those containing an allow string."""
        return [e.get("message", "") for e in self.d.get_log("browser")
                if e.get("level") == "SEVERE" and
                not any(a in e.get("message", "") for a in allow)]

    def use_token(self, tok):
        """Back to the token form (the page's own button) and in with tok."""
        if not self.click("#logout"):
            return False
        if not S.wait_until(lambda: self.attr("#token-panel", "hidden") is None, 5):
            return False
        return self.type("#token-input", tok, clear=True) and self.click("#token-submit")


def send_report(st, severity, kind, building, description, category=None, exercise=False):
    dev = st.device()
    try:
        rep = S.make_report("dash-%s" % uuid.uuid4().hex[:10], 1, severity=severity,
                            category=category or report_pb2.ACCIDENT_DISASTER, kind=kind,
                            compound="lijinggang", building=building, description=description)
        rep.exercise = exercise
        ack, _ = dev.submit(rep, timeout=10)
        return ack
    finally:
        dev.close()


# ---------------------------------------------------------------- steps


def open_live(st, c, p, coord, coord_name):
    p.d.get(st.base_url + "/#token=" + coord)
    c.check(S.wait_until(p.live, 10), "the page loads its snapshot and goes live",
            p.text("#conn"))
    c.check("token=" not in p.d.current_url, "the token is taken out of the visible URL",
            p.d.current_url)
    c.check(coord_name in (p.text("#me") or ""), "the page shows who is signed in",
            p.text("#me"))


def new_row(st, c, p):
    """A report from a device; the time from its ReportAck to its row in the DOM. Returns the
    incident id, or None."""
    ack = send_report(st, report_pb2.SEVERITY_II, "gas_leak", "7", "gas smell, 7th floor")
    t_ack = time.monotonic()
    if not c.eq(S.status_name(ack), "ACCEPTED", "the device's report is ACCEPTED"):
        return None
    row = row_of(ack.incident_id)
    seen = S.wait_until(lambda: p.has(row), 10, interval=0.02)
    latency = time.monotonic() - t_ack
    if not c.check(seen, "the incident's row appears on the page", "not within 10 s"):
        return None
    S.note("dashboard latency, ReportAck to row in the DOM: %.0f ms" % (latency * 1000))
    c.check(latency <= MAX_LATENCY, "the row appears within %.1f s of the ReportAck" %
            MAX_LATENCY, "%.3f s" % latency)

    # The row is redrawn as the incident moves on (routed, dispatched): read until it answers.
    cls = S.wait_until(lambda: p.attr(row, "class"), 2) or ""
    c.check("sev-II" in cls.split(), "the row carries the severity II class", cls)
    c.eq(p.border_colour(row), ORANGE, "a severity II row has an orange left border")
    c.eq(S.wait_until(lambda: p.text(row + " .sev-badge"), 2), "II", "the severity badge shows II")

    cd = row + " .countdown"

    def countdown(below=None):
        x = p.text(cd)
        if not x or not COUNTDOWN.match(x):
            return None
        return x if below is None or seconds_of(x) < seconds_of(below) else None
    first = S.wait_until(countdown, 10)
    if c.check(first, "a countdown to the deadline shows once routed", p.text(row)):
        c.check(S.wait_until(lambda: countdown(first), 3), "the countdown counts down",
                "%s then %s" % (first, p.text(cd)))
    return ack.incident_id


def actions(st, c, p, inc, coord_name):
    row, detail = row_of(inc), '#detail[data-incident="%s"]' % inc
    actor = "coordinator:" + coord_name
    p.click(row + " .main")
    c.check(S.wait_until(lambda: p.has(detail + ' #timeline tr[data-type="reported"]'), 5),
            "clicking the row opens the detail with its timeline")

    c.check(p.click('[data-incident="%s"] [data-action="acknowledge"]' % inc),
            "the acknowledge button is offered to a coordinator")
    acked = S.wait_until(lambda: events(st, "acknowledged", inc), 10)
    if c.check(acked, "the click commits an acknowledged event in the ledger"):
        c.eq(acked[0].actor, actor, "with the coordinator as actor")
        c.eq(len(events(st, "acknowledged", inc)), 1, "exactly one acknowledged event")
    c.check(S.wait_until(lambda: p.has(detail + ' #timeline tr[data-type="acknowledged"]'), 5),
            "the detail's timeline shows the acknowledgement")
    c.check(S.wait_until(lambda: p.has(row + " .ack-tag"), 5), "the row is marked acknowledged")
    res = p.text("#action-result") or ""
    c.check("acknowledge" in res.lower(), "the page reports the action's result", res)

    note = "gas valve closed " + uuid.uuid4().hex[:6]
    if c.check(p.type(detail + ' input[data-arg="note"]', note), "the detail has a note field"):
        p.click(detail + ' [data-action="note"]')
        noted = S.wait_until(lambda: events(st, "coordinator_note", inc), 10)
        got = noted and (noted[0].coordinator_note.text, noted[0].actor)
        c.eq(got, (note, actor), "a note typed on the page is committed with its text")

    p.click(detail + ' [data-action="close"]')
    c.check(S.wait_until(lambda: p.has("#action-result.error"), 3),
            "closing without a reason is refused on the page", p.text("#action-result"))
    c.eq(events(st, "closed", inc), [], "and nothing is committed")


def filters(st, c, p, inc):
    row = row_of(inc)
    p.select("#f-severity", "I")
    c.check(S.wait_until(lambda: not p.has(row), 3), "the severity filter hides a II row")
    p.select("#f-severity", "II")
    c.check(S.wait_until(lambda: p.has(row), 3), "and shows it when filtering on II")
    p.select("#f-severity", "")
    p.type("#f-text", "no-such-thing-here")
    c.check(S.wait_until(lambda: not p.has(row), 3), "the text search hides rows not matching")
    p.type("#f-text", inc[4:14], clear=True)
    c.check(S.wait_until(lambda: p.has(row), 3), "and finds the row by part of its id")
    p.select("#group-by", "community")
    c.check(S.wait_until(lambda: p.has('section[data-group="c:lijinggang"] ' + row), 3),
            "grouped by community, the row is under its community")
    p.select("#group-by", "tier")
    p.type("#f-text", " ", clear=True)  # clear() fires no input event; typing does
    c.check(S.wait_until(lambda: len(p.all("li.row")) == 1 and p.has(row), 3),
            "clearing the search shows the queue again")


def overdue(st, c, p):
    """The router again with time running 3000x: a severity I report's district deadline passes
    within a second and the router raises its overdue alarm. Returns the incident id or None."""
    st.extra_env["LINKAGE_TIME_SCALE"] = "3000"
    st.restart("router")
    # Dispatch on the same clock: the fire brigade's two plan minutes to answer pass at once.
    st.restart("dispatch")
    ack = send_report(st, report_pb2.SEVERITY_I, "fire", "3", "smoke from the basement")
    if not c.eq(S.status_name(ack), "ACCEPTED", "a severity I report is ACCEPTED"):
        return None
    row = row_of(ack.incident_id)
    late = S.wait_until(lambda: p.has(row + ".overdue"), 10)
    c.check(late, "its row is marked overdue once the deadline passed", p.text(row))
    c.eq(S.wait_until(lambda: p.text(row + " .overdue-tag"), 2), "OVERDUE", "with an OVERDUE tag")
    c.eq(p.border_colour(row), RED, "a severity I row has a red left border")
    first = p.js("var g = document.querySelector(arguments[0]);"
                 "g = g && g.closest('section.group');"
                 "return g && g.querySelector('li.row').dataset.incident;", row)
    c.eq(first, ack.incident_id, "overdue rows come first in their queue")
    return ack.incident_id


def what_matters_first(st, c, p, inc, late_inc):
    """The page opens on one list, most urgent first; a link names an incident; what nobody
    answers for is said on the row; a drill is marked."""
    p.select("#group-by", "none")
    ack = send_report(st, report_pb2.SEVERITY_IV, "noise", "30", "music after midnight",
                      category=report_pb2.NEIGHBOUR_DISPUTE)
    c.eq(S.status_name(ack), "ACCEPTED", "a neighbour dispute (IV) is ACCEPTED after the fire")
    rows = lambda: p.js("return Array.from(document.querySelectorAll('li.row'))"  # noqa: E731
                        ".map(function (e) { return e.dataset.incident; })") or []
    if late_inc:
        c.check(S.wait_until(lambda: ack.incident_id in rows() and rows()[0] == late_inc, 5),
                "the first row of the page is the overdue severity I fire, not the newer or "
                "older ones below it", rows())
        api = json.loads(st.http("GET", "/api/incidents", token=p.token)[2])
        c.eq(api["incidents"][0]["id"], late_inc, "and it is the API's first row too")
        order = [r["id"] for r in api["incidents"] if r["id"] in rows()]
        c.eq([x for x in rows() if x in order], order, "the page lists them in the API's order")
        c.check(S.wait_until(lambda: p.has(row_of(late_inc) + ' .missing-tag[data-role="fire_brigade"]'),
                             10),
                "a role nobody answers for is said on the row (no fire brigade engaged)",
                p.text(row_of(late_inc)))
    p.d.get(st.base_url + "/#incident=" + inc)
    c.check(S.wait_until(lambda: p.has('#detail[data-incident="%s"]' % inc), 10),
            "a link /#incident=<id> opens that incident", p.d.current_url)
    c.check(p.text("#detail-link") and inc in p.text("#detail-link"),
            "the detail shows its own link", p.text("#detail-link"))
    drill = send_report(st, report_pb2.SEVERITY_III, "gas_leak", "29", "exercise: gas drill",
                        exercise=True)
    c.check(S.wait_until(lambda: p.text(row_of(drill.incident_id) + " .exercise-tag") == "EXERCISE",
                         10), "a drill's report is marked EXERCISE on its row")


def planned_work(st, c, p, coord_name):
    reason = "water main repair " + uuid.uuid4().hex[:6]
    p.select("#pw-compound", "lijinggang")
    p.type("#pw-building", "12")
    p.type("#pw-reason", reason)
    p.click("#pw-submit")
    declared = S.wait_until(lambda: [e for e in events(st, "planned_work_declared")
                                     if e.planned_work_declared.reason == reason], 10)
    if not c.check(declared, "the page declares a planned-work window", p.text("#pw-result")):
        return
    w = declared[0].planned_work_declared
    c.eq((w.compound_id, w.building, w.to_us > w.from_us, declared[0].actor),
         ("lijinggang", "12", True, "coordinator:" + coord_name),
         "with the compound, building, times and coordinator given")
    win = '#planned-list li[data-window="%s"]' % w.window_id
    c.check(S.wait_until(lambda: p.has(win), 5), "the window is listed on the page")
    p.type(win + ' input[data-arg="lift"]', "repair finished early")
    p.click(win + ' [data-action="lift"]')
    lifted = S.wait_until(lambda: [e for e in events(st, "planned_work_lifted")
                                   if e.planned_work_lifted.window_id == w.window_id], 10)
    c.check(lifted, "lifting it from the page commits planned_work_lifted", p.text("#pw-result"))
    c.check(S.wait_until(lambda: p.has(win + ".lifted"), 5), "and the list shows it lifted")


def reconnect(st, c, p):
    """The gateway killed and started again: the page says it is reconnecting, comes back by
    itself, and shows what happened meanwhile."""
    st.kill9("gateway")
    c.check(S.wait_until(lambda: p.has('#conn[data-state="reconnecting"]'), 5),
            "the page shows it is reconnecting when the gateway goes away", p.text("#conn"))
    ack = send_report(st, report_pb2.SEVERITY_III, "lift_entrapment", "5", "two people in lift B")
    c.eq(S.status_name(ack), "ACCEPTED", "a report while the gateway is down is ACCEPTED")
    st.start_daemon("gateway")
    c.check(S.wait_until(p.live, 10), "the page is live again by itself", p.text("#conn"))
    if ack is not None and not isinstance(ack, bytes):
        c.check(S.wait_until(lambda: p.has(row_of(ack.incident_id)), 10),
                "the incident reported meanwhile appears after the reconnect")
    head = lambda: st.scalar("select max(position) from ledger")  # noqa: E731
    c.check(S.wait_until(lambda: p.text("#position") == head(), 5),
            "the page shows the last ledger position", (p.text("#position"), head()))
    # The browser logs its failed reconnection attempts; nothing else may be logged.
    c.eq(p.severe_logs(allow=("/api/stream",)), [], "no errors but the stream's while it was down")


def chinese(st, c, p, inc, late_inc):
    row = row_of(inc)
    before = p.text(row + " .cat")
    p.click("#lang-toggle")
    c.check(S.wait_until(lambda: p.text(row + " .cat") == "事故灾难", 3),
            "the language toggle switches the category label to Chinese",
            "%r then %r" % (before, p.text(row + " .cat")))
    c.eq(p.text("#lang-toggle"), "EN", "the toggle then offers English")
    c.eq(p.js("return document.documentElement.lang"), "zh-CN", "the page's lang is zh-CN")
    c.check(S.wait_until(lambda: "麗晶港" in (p.text(row + " .where") or ""), 2),
            "compound names come from the district, in Chinese", p.text(row + " .where"))
    if late_inc:
        c.eq(S.wait_until(lambda: p.text(row_of(late_inc) + " .overdue-tag"), 2), "超时",
             "the overdue tag reads 超时")
    p.click(row + " .main")
    tl = '#detail[data-incident="%s"] #timeline tbody' % inc
    c.check(S.wait_until(lambda: "温江区消防救援大队涌泉消防站" in (p.text(tl) or ""), 5),
            "the timeline's details name the units in Chinese", (p.text(tl) or "")[:300])
    c.check(S.wait_until(lambda: "派单" in (p.text(tl) or ""), 2),
            "and the event words are Chinese (from the life-cycle table)")


def reader_view(st, c, p, inc, reader):
    row, detail = row_of(inc), '#detail[data-incident="%s"]' % inc
    p.use_token(reader)
    c.check(S.wait_until(lambda: p.live() and p.has(row), 10), "a reader sees the live queues")
    c.eq(len(p.all("[data-action]")), 0, "no action is offered to a reader")
    p.click(row + " .main")
    c.check(S.wait_until(lambda: p.has(detail + ' #timeline tr[data-type="acknowledged"]'), 5),
            "a reader can open the detail")
    c.eq(len(p.all("[data-action]")), 0, "nor in the detail")
    status, _, _ = st.http("POST", "/api/incidents/%s/note" % inc, token=reader,
                           data={"text": "reader trying", "command_id": uuid.uuid4().hex})
    c.eq(status, 403, "the API refuses a reader's action with 403")


def body(st, c):
    coord_name = "dash-coord-" + uuid.uuid4().hex[:6]
    coord = st.token(coord_name, "coordinator")
    reader = st.token("dash-reader-" + uuid.uuid4().hex[:6], "reader")
    p = Page(st)
    try:
        open_live(st, c, p, coord, coord_name)
        inc = new_row(st, c, p)
        if inc is None:
            return
        actions(st, c, p, inc, coord_name)
        filters(st, c, p, inc)
        late_inc = overdue(st, c, p)
        p.token = coord
        what_matters_first(st, c, p, inc, late_inc)
        planned_work(st, c, p, coord_name)
        c.eq(p.severe_logs(), [], "no errors in the browser console")
        reconnect(st, c, p)
        chinese(st, c, p, inc, late_inc)

        shot = os.path.join(S.BUILD, "artifacts", "dashboard.png")
        os.makedirs(os.path.dirname(shot), exist_ok=True)
        if c.check(p.d.save_screenshot(shot), "a screenshot is saved"):
            S.note("dashboard screenshot: %s" % shot)
        c.eq(p.severe_logs(), [], "no errors in the browser console after the reconnect")

        reader_view(st, c, p, inc, reader)
        c.eq(p.severe_logs(), [], "no errors in the browser console as a reader")

        p.use_token("not-a-token-" + uuid.uuid4().hex[:8])
        c.check(S.wait_until(lambda: "401" in (p.text("#token-msg") or ""), 5),
                "a refused token brings back the token form, saying why", p.text("#token-msg"))
        # The refused requests themselves are logged by the browser; nothing else may be.
        c.eq(p.severe_logs(allow=("status of 401",)), [], "no other errors in the console")
    finally:
        p.quit()


def main():
    missing = [x for x in (CHROMIUM, CHROMEDRIVER) if not os.access(x, os.X_OK)]
    if SELENIUM_ERROR is not None:
        missing.append("python3-selenium (%s)" % SELENIUM_ERROR)
    if missing:
        c = S.Checks()
        c.fail("chromium, chromedriver and python3-selenium are installed",
               "missing %s; `make deps` (deploy/install-deps.sh) installs them" %
               ", ".join(missing))
        sys.exit(c.done())
    S.main(body, "dashboard", daemons=("ledger", "intake", "router", "dispatch", "gateway"))


if __name__ == "__main__":
    main()
