"""The soak's driver (run by bench/soak.sh, which builds and seeds): three `paperboy serve`
processes on one database, an SMTP sink that records every message, fixture Hugging Face
days, a mixed load of readers, two restarts and a Postgres restart half-way, and at the
end the counts: editions due and delivered, duplicates, confirmations, 5xx, memory.

Everything it needs comes from the environment soak.sh sets (see there)."""
import asyncore  # noqa: F401  (smtpd runs on it; both ship with CPython 3.11)
import collections
import email
import email.policy
import html.parser
import json
import os
import random
import re
import signal
import smtpd
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo
from datetime import datetime, timedelta, timezone

ENV = os.environ
BIN = ENV["SOAK_BIN"]
DB_URL = ENV["SOAK_DATABASE_URL"]
DURATION = int(ENV.get("DURATION", "1440"))
LOAD = float(ENV.get("SOAK_LOAD", "1"))
WORK = ENV["SOAK_WORK"]
FIXTURES = ENV["SOAK_FIXTURES"]
PORTS = [25311, 25312, 25313]
SINK_PORT, HF_PORT = 25314, 25315
BASE = f"http://127.0.0.1:{PORTS[0]}"
PG_RESTART = ENV["SOAK_PG_RESTART"]
LEASE = 60
SEND_CONCURRENCY = 4

started = time.time()
lock = threading.Lock()


def log(*args):
    print(f"[{time.time() - started:7.1f}s]", *args, flush=True)


def psql(sql):
    out = subprocess.run(["psql", DB_URL, "-qAtc", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


# --- The SMTP sink: every message, by recipient and by what its Message-ID names -----------
received = []  # (time, recipient, kind, id)
confirm_links = collections.deque()
manage_links, rate_links, feed_links = [], [], []
LINK = re.compile(r"http://127\.0\.0\.1:\d+(/(?:confirm|preferences|rate|feed)/[^\s<>\"]+)")


class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        message = email.message_from_bytes(data, policy=email.policy.default)
        mid = re.match(r"<([dm])(\d+)\.", message.get("message-id", ""))
        kind, ident = (mid.group(1), int(mid.group(2))) if mid else ("?", 0)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        paths = LINK.findall(text)
        with lock:
            for to in rcpttos:
                received.append((time.time(), to.lower(), kind, ident))
            for path in paths:
                if path.startswith("/confirm/") and not path.endswith("/renew"):
                    confirm_links.append(path)
                elif path.startswith("/preferences/") and path.count("/") == 2:
                    manage_links.append(path)
                elif path.startswith("/rate/"):
                    rate_links.append(path)
                elif path.startswith("/feed/"):
                    feed_links.append(path)
        return None


# --- The three instances ------------------------------------------------------------------
def serve_env(port):
    env = dict(ENV)
    env.update(
        DATABASE_URL=DB_URL,
        PAPERBOY_BIND=f"127.0.0.1:{port}",
        PAPERBOY_BASE_URL=f"http://127.0.0.1:{port}",
        PAPERBOY_SMTP_URL=f"smtp://127.0.0.1:{SINK_PORT}",
        PAPERBOY_HF_URL=f"http://127.0.0.1:{HF_PORT}",
        PAPERBOY_INGEST_HF_CRON="*/2 * * * *",
        PAPERBOY_INGEST_ARXIV_CRON="0 0 1 1 *",
        PAPERBOY_DIGEST_CRON="* * * * *",
        PAPERBOY_CLAIM_LEASE_SECS=str(LEASE),
        PAPERBOY_SEND_CONCURRENCY=str(SEND_CONCURRENCY),
        PAPERBOY_SUBSCRIBE_RATE="0",
        # Readers come from many addresses (X-Forwarded-For below), as behind a proxy.
        PAPERBOY_TRUST_PROXY="true",
        PAPERBOY_RETRY_BASE_MS="2000",
        RUST_LOG="warn",
    )
    return env


class Instance:
    def __init__(self, n):
        self.n, self.port = n, PORTS[n]
        self.proc, self.samples = None, []
        self.log = open(os.path.join(WORK, f"serve-{n}.log"), "ab")

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "serve"], env=serve_env(self.port), stdout=self.log, stderr=self.log
        )
        self.started = time.time()
        self.samples = []  # (time, RSS KiB) every 10 s of this run of the process
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
                return
            except Exception:
                time.sleep(0.2)
        raise SystemExit(f"serve {self.n} did not come up; see {WORK}/serve-{self.n}.log")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(next(line for line in f if line.startswith("VmRSS")).split()[1])

    def median_rss(self, since, until):
        """The median RSS sampled in [since, until] (RSS swings with each embedding batch:
        one sample would compare a trough with a peak)."""
        window = sorted(kib for t, kib in self.samples if since <= t <= until)
        return window[len(window) // 2] if window else None

    def baseline(self):
        """RSS after the first 5 minutes: the median of minutes 4 to 6."""
        return self.median_rss(self.started + 240, self.started + 360)

    def stop(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=120)


# --- The readers ----------------------------------------------------------------------------
answers = collections.Counter()
server_errors = []  # (time, what, status)
signed_up = set()
load_running = threading.Event()


def request(what, path, data=None, headers=None, port=None):
    port = port or random.choice(PORTS)
    url = f"http://127.0.0.1:{port}{path}"
    body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
    headers = dict(headers or {})
    headers["X-Forwarded-For"] = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, payload, head = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, payload, head = e.code, e.read(), e.headers
    except Exception as e:  # refused while an instance restarts: not an answer
        with lock:
            answers[(what, type(e).__name__)] += 1
        return None, b"", {}
    with lock:
        answers[(what, status)] += 1
        if status >= 500:
            server_errors.append((time.time(), what, status))
    return status, payload, head


def pick(links):
    with lock:
        return random.choice(links) if links else None


def sign_up(i):
    address = f"reader{i}@soak.example"
    status, _, _ = request("sign-up", "/subscribe", {"email": address, "topics": "agents, diffusion"})
    if status == 200:
        with lock:
            signed_up.add(address)


def confirm():
    with lock:
        path = confirm_links.popleft() if confirm_links else None
    if path:
        request("confirm page", path)
        request("confirm", path, {})


class FormValues(html.parser.HTMLParser):
    """The values the preferences form holds, as a browser would submit them."""

    def __init__(self):
        super().__init__()
        self.values, self.select, self.textarea, self.in_form = [], None, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.in_form = a.get("action", "").startswith("/preferences/") and "/feed" not in a.get("action", "")
        if not self.in_form:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.values.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select = a.get("name")
        elif tag == "option" and self.select and "selected" in a:
            self.values.append((self.select, a.get("value", "")))
        elif tag == "textarea":
            self.textarea = a.get("name")
            self.values.append((self.textarea, ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea and self.in_form:
            name, value = self.values[-1]
            self.values[-1] = (name, value + data)


def save_preferences():
    path = pick(manage_links)
    if not path:
        return
    status, page, _ = request("preferences page", path)
    if status != 200:
        return
    text = page.decode()
    with lock:
        feed_links.extend(re.findall(r"/feed/[A-Za-z0-9_-]+", text)[:1])
        del feed_links[:-500]
    form = FormValues()
    form.feed(text)
    # New topics; the schedule stays as it was (the accounting knows when each is due).
    topics = random.choice(["agents", "diffusion, video", "reinforcement learning", "reasoning"])
    values = [(k, topics if k == "topics" else v) for k, v in form.values]
    request("save preferences", path, values)


def rate():
    path = pick(rate_links)
    if path:
        request("rate", path, {})


etags = {}


def poll_feed():
    path = pick(feed_links)
    if path:
        headers = {"If-None-Match": etags[path]} if path in etags else {}
        status, _, head = request("feed", path, headers=headers)
        if status == 200 and head.get("etag"):
            etags[path] = head["etag"]


def view_page():
    request("page", random.choice(["/", "/days", "/", "/healthz"]))


def reader(action, per_second):
    interval = 1.0 / (per_second * LOAD)
    n = 0
    while load_running.is_set():
        n += 1
        t = time.time()
        try:
            action(n) if action is sign_up else action()
        except Exception as e:
            log("load error", action.__name__, e)
        time.sleep(max(0.0, interval - (time.time() - t)))


# --- The accounting -------------------------------------------------------------------------
def first_due(row, since, until):
    """The first minute in [since, until] at which the scheduler finds this reader due."""
    frequency, weekday, hour, zone = row
    tz = zoneinfo.ZoneInfo(zone)
    t = since
    while t <= until:
        local = datetime.fromtimestamp(t, tz)
        if local.hour >= hour and (frequency == "daily" or local.isoweekday() == weekday):
            return t
        t += 60
    return None


def account(start, load_stopped):
    """Compares what each confirmed reader was due with what the database and the sink say."""
    rows = psql(
        "SELECT s.email_key, s.frequency, s.weekday, s.delivery_hour, s.time_zone, "
        "extract(epoch FROM s.confirmed_at), count(d.id), "
        "count(d.id) FILTER (WHERE d.status = 'sent'), string_agg(d.id::text || ':' || d.status, ' ') "
        "FROM subscribers s LEFT JOIN deliveries d ON d.subscriber_id = s.id "
        "WHERE s.status = 'confirmed' GROUP BY s.id"
    ).splitlines()
    with lock:
        digests = collections.Counter(i for _, _, k, i in received if k == "d")
    counts = collections.Counter()
    problems = []
    for line in rows:
        key, frequency, weekday, hour, zone, confirmed, n, sent, ids = line.split("|")
        since = max(start, float(confirmed))
        due_at = first_due((frequency, int(weekday), int(hour), zone), since, time.time())
        if due_at is not None and due_at > load_stopped:
            counts["readers first due after the load stopped (not judged)"] += 1
            continue
        due = 1 if due_at is not None else 0
        counts["confirmed readers judged"] += 1
        counts["editions due"] += due
        counts["deliveries recorded"] += int(n)
        if int(n) != due:
            problems.append(f"{key}: due {due}, recorded {n} ({ids})")
        for part in ids.split() if ids else []:
            ident, status = part.split(":")
            copies = digests.get(int(ident), 0)
            if status == "sent":
                counts["digests sent"] += 1
                if copies == 0:
                    problems.append(f"{key}: delivery {ident} marked sent, never received")
            elif copies:
                problems.append(f"{key}: delivery {ident} is {status} but was received")
            else:
                counts[f"deliveries {status}"] += 1
    counts["digest messages received"] = sum(digests.values())
    counts["duplicate digest copies"] = sum(c - 1 for c in digests.values() if c > 1)
    with lock:
        confirmations = {to for _, to, k, _ in received if k == "m"}
        missing = sorted(a for a in signed_up if a not in confirmations)
    counts["sign-ups answered 200"] = len(signed_up)
    counts["sign-ups whose confirmation never arrived"] = len(missing)
    counts["transactional mail not sent"] = int(
        psql("SELECT count(*) FROM outgoing_mail WHERE status <> 'sent'")
    )
    return counts, problems, missing


def drained():
    return psql(
        "SELECT (SELECT count(*) FROM delivery_queue) + "
        "(SELECT count(*) FROM outgoing_mail WHERE status NOT IN ('sent', 'failed'))"
    ) == "0"


def main():
    # Hugging Face: the next fixture day on every request (new papers at every ingest).
    days = sorted(os.path.join(FIXTURES, p) for p in os.listdir(FIXTURES) if p.endswith(".json"))
    upstream = subprocess.Popen([sys.executable, "bench/fixture_server.py", str(HF_PORT), *days])
    Sink(("127.0.0.1", SINK_PORT), None)
    threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.5}, daemon=True).start()

    instances = [Instance(n) for n in range(3)]
    for i in instances:
        i.start()
    start = time.time()
    log(f"three instances up on ports {PORTS}; soak for {DURATION} s")

    load_running.set()
    mix = [(sign_up, 1.5), (confirm, 3), (save_preferences, 0.5), (rate, 1), (poll_feed, 2), (view_page, 4)]
    threads = [threading.Thread(target=reader, args=m, daemon=True) for m in mix]
    for t in threads:
        t.start()

    half = start + DURATION / 2
    plan = [
        (half, "SIGTERM to instance 1, then start it again"),
        (half + 60, "kill -9 of instance 2, then start it again"),
        (half + 180, "Postgres restart"),
    ]
    pg_window = None
    while time.time() < start + DURATION:
        now = time.time()
        if int(now - start) % 10 == 0:
            for i in instances:
                i.samples.append((now, i.rss_kib()))
        if plan and now >= plan[0][0]:
            _, what = plan.pop(0)
            log(what)
            if what.startswith("SIGTERM"):
                instances[1].stop(signal.SIGTERM)
                instances[1].start()
            elif what.startswith("kill -9"):
                instances[2].stop(signal.SIGKILL)
                instances[2].start()
            else:
                began = time.time()
                subprocess.run(PG_RESTART, shell=True, check=True)
                pg_window = (began, time.time() + 30)
                log(f"Postgres back after {time.time() - began:.1f} s")
        with lock:
            if int(now - start) % 60 == 0:
                rss = [round(i.rss_kib() / 1024) for i in instances]
                log(f"answers so far: {sum(answers.values())}, mail received: {len(received)}, "
                    f"RSS MiB: {rss}")
        time.sleep(1)

    load_running.clear()
    load_stopped = time.time()
    for t in threads:
        t.join()
    log("load stopped; waiting for a digest run and for the queues to drain")
    time.sleep(75)
    deadline = time.time() + 4 * LEASE + 300
    while not drained() and time.time() < deadline:
        time.sleep(5)
    time.sleep(5)  # the sink's last messages
    # At the end: the median of the load's last two minutes, against the median of minutes
    # 4 to 6 of each process's run.
    final_rss = {i.n: i.median_rss(load_stopped - 120, load_stopped) for i in instances}
    baselines = {i.n: i.baseline() for i in instances}
    counts, problems, missing = account(start, load_stopped)
    for i in instances:
        i.stop(signal.SIGTERM)
    upstream.terminate()

    outside = [e for e in server_errors if not (pg_window and pg_window[0] <= e[0] <= pg_window[1])]
    print()
    print("== soak: counts ==")
    for k, v in counts.items():
        print(f"  {k}: {v}")
    print(f"  answers: {sum(v for (w, s), v in answers.items() if isinstance(s, int))} "
          f"(refused while restarting: {sum(v for (w, s), v in answers.items() if not isinstance(s, int))})")
    for (what, status), n in sorted(answers.items(), key=lambda x: str(x)):
        print(f"    {what} {status}: {n}")
    print(f"  5xx in the Postgres restart window: {len(server_errors) - len(outside)}")
    print(f"  5xx outside it: {len(outside)}")
    for e in outside[:10]:
        print(f"    {e[0] - start:.0f}s {e[1]} {e[2]}")
    print(f"  duplicate bound (the killed instance's in-flight digests): {SEND_CONCURRENCY}")
    for i in instances:
        base, end = baselines[i.n], final_rss[i.n]
        ratio = end / base if base and end else float("nan")
        print(f"  instance {i.n}: RSS {(base or 0) / 1024:.0f} MiB after 5 min, "
              f"{(end or 0) / 1024:.0f} MiB at the end (medians): {ratio:.2f}x")
    for p in problems[:20]:
        print("  problem:", p)
    ok = (
        not problems
        and not missing
        and not outside
        and counts["transactional mail not sent"] == 0
        and counts["duplicate digest copies"] <= SEND_CONCURRENCY
        and all(baselines[n] and final_rss[n] and final_rss[n] <= 1.2 * baselines[n] for n in baselines)
    )
    print("== soak:", "PASS" if ok else "FAIL", "==")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
