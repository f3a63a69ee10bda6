"""The steps of scripts/bench that run Vigil's stages (called by scripts/bench, one step per call).

  bench.py prefill | ingest | enrich | detect | respond | pipeline1 | pipeline2 | peer | keys | report

Context comes from the environment scripts/bench sets: BENCH_ROOT, BENCH_WORK, BENCH_BIN,
BENCH_BROKERS, BENCH_RECORDS, BENCH_PARTITIONS, BENCH_KEYS, BENCH_PY (the venv's python with
confluent_kafka and quixstreams), BENCH_PIDFILE. Each step writes BENCH_WORK/results/STEP.json;
`report` merges them into the final JSON line. Progress goes to stdout as "bench: ..." lines.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402
from procs import Stage, Watch, log, stop_all  # noqa: E402

ROOT = os.environ["BENCH_ROOT"]
WORK = os.environ["BENCH_WORK"]
BIN = os.environ["BENCH_BIN"]
B = os.environ["BENCH_BROKERS"]
N = int(os.environ["BENCH_RECORDS"])
P = int(os.environ["BENCH_PARTITIONS"])
KEYS = int(os.environ.get("BENCH_KEYS", "100000"))
PIPELINE_N = int(os.environ.get("BENCH_PIPELINE_RECORDS") or max(min(N, 10000), N // 4))
PY = os.environ.get("BENCH_PY", sys.executable)
RESULTS = os.path.join(WORK, "results")
RAW = os.path.join(WORK, "raw.tsv")
INVENTORY = os.path.join(WORK, "inventory.csv")
IDLE = 2.0                 # seconds without progress that mean "done"
STAGE_TIMEOUT = 240        # any one stage run
KEYS_TIMEOUT = 75          # the open-keys run, which reports what it reached when cut short


def result(step, value=None):
    path = os.path.join(RESULTS, step + ".json")
    if value is None:
        with open(path) as f:
            return json.load(f)
    os.makedirs(RESULTS, exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f)
    return value


def have(step):
    return os.path.exists(os.path.join(RESULTS, step + ".json"))


def vigil(*args, timeout=120, **kw):
    return subprocess.run([os.path.join(BIN, "vigil")] + list(args), check=True, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def create_topics(prefix):
    vigil("topics", "create", "--brokers", B, "--topic-prefix", prefix, "--partitions", str(P))


def count(topic):
    """Records in a topic: consume from the beginning to the end of every partition."""
    p = subprocess.run(["kcat", "-C", "-b", B, "-t", topic, "-o", "beginning", "-e", "-q", "-f", ".\n",
                        "-X", "fetch.wait.max.ms=10"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300, check=True)
    return p.stdout.count(b"\n")


def values(topic):
    p = subprocess.run(["kcat", "-C", "-b", B, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n",
                        "-X", "fetch.wait.max.ms=10"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300, check=True)
    return [l for l in p.stdout.decode().split("\n") if l]


def copy_topic(src, dst):
    """kcat | kcat, keys carried along (like the ceiling)."""
    c = subprocess.Popen(["kcat", "-C", "-b", B, "-t", src, "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n",
                          "-X", "fetch.wait.max.ms=10"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p = subprocess.run(["kcat", "-P", "-b", B, "-t", dst, "-K", "\t", "-X", "linger.ms=10"], stdin=c.stdout,
                       stderr=subprocess.PIPE, timeout=300)
    c.wait(60)
    if p.returncode or c.returncode:
        sys.exit("bench: error: copying %s to %s failed: %s" % (src, dst, p.stderr.decode()[-500:]))


def produce_file(topic, path):
    p = subprocess.run([PY, "-W", "ignore", os.path.join(os.path.dirname(__file__), "load.py"), "produce", B, topic, path],
                       stdout=subprocess.PIPE, timeout=300, text=True)
    if p.returncode:
        sys.exit("bench: error: producing %s into %s failed" % (path, topic))
    return json.loads(p.stdout.strip().splitlines()[-1])


def stage_bin(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        sys.exit("bench: error: no executable %s in %s (build all products: swift build -c release)" % (name, BIN))
    return path


def ins(stages, topic):
    return sum(s.metric("vigil_records_in_total", topic=topic) for s in stages)


def outs(stages, topic):
    return sum(s.metric("vigil_records_out_total", topic=topic) for s in stages)


def figures(stages, watch, n_in, n_out):
    secs = watch["seconds"]
    return {
        "records_in": int(n_in), "records_out": int(n_out),
        "seconds": round(secs, 3),
        "rps": round(n_in / secs), "rps_out": round(n_out / secs),
        "cpu_s_per_m": round(watch["cpu_seconds"] / n_in * 1e6, 1) if n_in else None,
        "cpu_total_s_per_m": round(watch["cpu_total_seconds"] / n_in * 1e6, 1) if n_in else None,
        "rss_mb": round(watch["hwm_mb"], 1),
    }


def ceiling_rps():
    return result("ceiling")["ceiling_rps"] if have("ceiling") else None


def with_ratio(fig):
    c = ceiling_rps()
    fig["ratio"] = round(fig["rps"] / c, 2) if c else None
    return fig


# --- steps --------------------------------------------------------------------------------
def prefill():
    """Generates the load and the inventory, creates the stage-alone topics (prefix s.) and
    fills s.raw."""
    # The generator is deterministic: its output is cached by (generator source, N) under
    # .build/bench-cache (ignored by git, removed by `make clean`), which saves ~10 s of CPU.
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256(open(os.path.join(here, "load.py"), "rb").read()).hexdigest()[:12]
    cache = os.path.join(ROOT, ".build", "bench-cache", "load-%s-%d" % (digest, N))
    if not os.path.exists(os.path.join(cache, "mix.json")):
        os.makedirs(cache, exist_ok=True)
        p = subprocess.run([sys.executable, os.path.join(here, "load.py"), "gen", str(N), os.path.join(cache, "raw.tsv"),
                            os.path.join(cache, "inventory.csv")], stdout=subprocess.PIPE, text=True, timeout=600, check=True)
        with open(os.path.join(cache, "mix.json"), "w") as f:
            f.write(p.stdout.strip().splitlines()[-1])
    else:
        log("load: %d records from the cache %s" % (N, cache))
    shutil.copy(os.path.join(cache, "raw.tsv"), RAW)
    shutil.copy(os.path.join(cache, "inventory.csv"), INVENTORY)
    mix = json.load(open(os.path.join(cache, "mix.json")))
    create_topics("s.")
    r = produce_file("s.raw", RAW)
    have_n = count("s.raw")
    if have_n != N:
        sys.exit("bench: error: s.raw holds %d records, expected %d" % (have_n, N))
    log("produced %d raw records into s.raw in %.1f s (checked: %d)" % (N, r["seconds"], have_n))
    result("prefill", dict(mix, produce_seconds=r["seconds"]))


def run_stage(step, name, argv, inputs, expected, main_in, out_topic, extra_done=None, progress_topics=None, env=None,
              timeout=STAGE_TIMEOUT, soft=False):
    log("%s: %s over %d records of %s" % (step, name, expected, main_in))
    stages = [Stage("%s-%s" % (step, name), argv, WORK, inputs, env=env, cwd=ROOT)]
    profiler = start_profile(step, stages[0])
    try:
        w = Watch(stages, step)
        done = lambda st: ins(st, main_in) >= expected and (extra_done is None or extra_done(st))
        topics = progress_topics or [main_in]
        progress = lambda st: tuple(ins(st, t) for t in topics) + (sum(s.metric("vigil_records_out_total") for s in st),)
        m = w.run(started=lambda st: ins(st, main_in) > 0, done=done, progress=progress, idle=IDLE, timeout=timeout, soft=soft)
        fig = figures(stages, m, ins(stages, main_in), outs(stages, out_topic))
        fig["dead_letters"] = int(outs(stages, main_in.split(".")[0] + ".dlq"))
        if not m["complete"]:
            fig["complete"] = False
        late = sum(v for k, v in stages[0].counters.items() if k[0] == "vigil_detect_late_records_total")
        if late:
            fig["late_records"] = int(late)
            by_rule = {}
            for (name, labels), v in stages[0].counters.items():
                if name == "vigil_detect_late_records_total" and v:
                    rule = dict(labels).get("rule", "?")
                    by_rule[rule] = by_rule.get(rule, 0) + int(v)
            fig["late_by_rule"] = dict(sorted(by_rule.items(), key=lambda kv: -kv[1]))
        pauses = sum(v for k, v in stages[0].counters.items() if k[0] == "vigil_input_pauses_total")
        if pauses:
            fig["input_pauses"] = int(pauses)
        gauges = {k[0]: v for k, v in stages[0].counters.items() if k[0] == "vigil_detect_open_keys"}
        if gauges:
            fig["open_keys"] = int(sum(gauges.values()))
        return fig, stages
    finally:
        stop_profile(profiler)
        stop_all(stages)


def start_profile(step, stage):
    """--profile STEP: `perf record -g` attached to the stage process (so its /proc figures stay
    its own; perf's sampling adds a little CPU to them)."""
    if step not in os.environ.get("BENCH_PROFILE", "").split(","):
        return None
    path = os.path.join(WORK, "perf-%s.data" % step)
    # Attached once the process serves /metrics (its threads are up; attached earlier, perf saw
    # no samples of vigil-detect).
    deadline = time.time() + 15
    while time.time() < deadline and not stage.up:
        stage.sample()
        time.sleep(0.05)
    log("%s: profiling pid %d with perf record -g (%s)" % (step, stage.proc.pid, path))
    return (subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(stage.proc.pid), "-o", path],
                             stdout=subprocess.DEVNULL, stderr=open(path + ".log", "w")), path, step)


def stop_profile(profiler):
    if profiler is None:
        return
    proc, path, step = profiler
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return
    # Flat profile (self time per symbol), Swift names demangled.
    report = subprocess.run("perf report -i '%s' --no-children -g none --percent-limit 0.3 --sort symbol --stdio 2>/dev/null | "
                            "swift demangle --simplified 2>/dev/null | grep -v '^#' | grep '%%' | head -n 40" % path,
                            shell=True, stdout=subprocess.PIPE, text=True, timeout=300).stdout
    with open(os.path.join(WORK, "perf-%s.txt" % step), "w") as f:
        f.write(report)
    log("%s: profile, top symbols by self time (also in %s):" % (step, os.path.join(WORK, "perf-%s.txt" % step)))
    for line in report.splitlines()[:25]:
        log("  " + " ".join(line.split())[:160])


def ingest():
    fig, _ = run_stage("ingest", "vigil-ingest",
                       [stage_bin("vigil-ingest"), "--brokers", B, "--topic-prefix", "s.", "--group", "bench-ingest"],
                       ["s.raw"], N, "s.raw", "s.events")
    log("ingest: %(records_in)d raw -> %(records_out)d events in %(seconds).2f s: %(rps)d records/s in, %(rps_out)d out, "
        "%(cpu_s_per_m).1f CPU s per million, peak RSS %(rss_mb).0f MB" % fig)
    result("ingest", with_ratio(fig))


def enrich():
    expected = result("ingest")["records_out"] if have("ingest") else count("s.events")
    db = os.path.join(WORK, "enrich-s.sqlite")
    fig, _ = run_stage("enrich", "vigil-enrich",
                       [stage_bin("vigil-enrich"), "--brokers", B, "--topic-prefix", "s.", "--group", "bench-enrich",
                        "--inventory", db, "--import", INVENTORY],
                       ["s.events"], expected, "s.events", "s.enriched")
    log("enrich: %(records_in)d events -> %(records_out)d enriched in %(seconds).2f s: %(rps)d records/s, "
        "%(cpu_s_per_m).1f CPU s per million, peak RSS %(rss_mb).0f MB" % fig)
    result("enrich", with_ratio(fig))


def detect_argv(prefix, group, rules, idle_advance):
    return [stage_bin("vigil-detect"), "--brokers", B, "--topic-prefix", prefix, "--group", group,
            "--rules", rules, "--idle-advance", str(idle_advance)]


def run_detect(step, prefix, rules, expected, **kw):
    partials = prefix + "detect.partials"
    return run_stage(step, "vigil-detect", detect_argv(prefix, "bench-" + step, rules, 0),
                     [prefix + "enriched", partials], expected, prefix + "enriched", prefix + "alerts",
                     extra_done=lambda st: ins(st, partials) >= outs(st, partials),
                     progress_topics=[prefix + "enriched", partials], **kw)


def detect():
    expected = result("enrich")["records_out"] if have("enrich") else count("s.enriched")
    # --idle-advance 0: replay-style, windows close on event time only (no wall-clock firing
    # seconds after the input ends, which would stretch the measured interval).
    fig, _ = run_detect("detect", "s.", os.path.join(ROOT, "rules"), expected)
    log("detect: %(records_in)d enriched -> %(records_out)d alerts in %(seconds).2f s: %(rps)d records/s, "
        "%(cpu_s_per_m).1f CPU s per million, peak RSS %(rss_mb).0f MB" % fig)
    result("detect", with_ratio(fig))


def respond():
    """vigil-respond over alerts: detect's real alerts (of s.alerts), repeated with fresh alert
    ids until there are N/10 of them (at least 1000), into r.alerts; a 200,000-record load
    yields only a few hundred alerts, too few to time a stage."""
    real = values("s.alerts")
    if not real:
        sys.exit("bench: error: s.alerts is empty: run the detect step first")
    k = max(N // 10, 1000)
    create_topics("r.")
    path = os.path.join(WORK, "alerts.tsv")
    with open(path, "w") as f:
        for i in range(k):
            a = real[i % len(real)]
            uid = json.loads(a).get("metadata", {}).get("uid")
            new = "bench-%08d-%s" % (i, uid)
            f.write("x\t%s\t%s\n" % (new, a.replace(uid, new) if uid else a))
    produce_file("r.alerts", path)
    fig, _ = run_stage("respond", "vigil-respond",
                       [stage_bin("vigil-respond"), "--brokers", B, "--topic-prefix", "r.", "--group", "bench-respond",
                        "--playbooks", os.path.join(ROOT, "playbooks")],
                       ["r.alerts"], k, "r.alerts", "r.commands")
    fig["distinct_alerts"] = len(real)
    log("respond: %(records_in)d alerts -> %(records_out)d commands in %(seconds).2f s: %(rps)d records/s, "
        "%(cpu_s_per_m).1f CPU s per million, peak RSS %(rss_mb).0f MB" % fig)
    result("respond", with_ratio(fig))


# --- the whole pipeline -----------------------------------------------------------------------
def pipeline(copies):
    step = "pipeline%d" % copies
    prefix = "p%d." % copies
    create_topics(prefix)
    T = lambda name: prefix + name
    stages = []
    try:
        for c in range(copies):
            common = ["--brokers", B, "--topic-prefix", prefix]
            stages.append(Stage("%s-ingest-%d" % (step, c), [stage_bin("vigil-ingest")] + common, WORK, [T("raw")], cwd=ROOT))
            stages.append(Stage("%s-enrich-%d" % (step, c), [stage_bin("vigil-enrich")] + common + [
                "--inventory", os.path.join(WORK, "enrich-%s%d.sqlite" % (prefix, c)), "--import", INVENTORY],
                WORK, [T("events")], cwd=ROOT))
            stages.append(Stage("%s-detect-%d" % (step, c), [stage_bin("vigil-detect")] + common + [
                "--rules", os.path.join(ROOT, "rules")], WORK, [T("enriched"), T("detect.partials")], cwd=ROOT))
            stages.append(Stage("%s-respond-%d" % (step, c), [stage_bin("vigil-respond")] + common + [
                "--playbooks", os.path.join(ROOT, "playbooks")], WORK, [T("alerts")], cwd=ROOT))
        w = Watch(stages, step)
        log("%s: %d processes started; waiting for every consumer group's assignment" % (step, len(stages)))
        w.wait_assigned([T("raw"), T("events"), T("enriched"), T("detect.partials"), T("alerts")], P, timeout=90)
        time.sleep(1)
        # Throughput: the whole load, produced as fast as the producer goes (faster than the
        # pipeline), from the first raw record ingested to the last partial aggregated.
        n = PIPELINE_N
        path = os.path.join(WORK, "pipeline.tsv")
        with open(RAW) as src, open(path, "w") as dst:
            for i, line in zip(range(n), src):
                dst.write(line)
        log("%s: groups assigned; producing %d raw records into %s" % (step, n, T("raw")))
        producer = subprocess.Popen([PY, "-W", "ignore", os.path.join(os.path.dirname(__file__), "load.py"), "produce",
                                     B, T("raw"), path], stdout=subprocess.PIPE, text=True)
        progress_topics = [T("raw"), T("events"), T("enriched"), T("detect.partials")]

        def done(st):
            return (ins(st, T("raw")) >= n and ins(st, T("events")) >= outs(st, T("events"))
                    and ins(st, T("enriched")) >= outs(st, T("enriched"))
                    and ins(st, T("detect.partials")) >= outs(st, T("detect.partials")))
        m = w.run(started=lambda st: ins(st, T("raw")) > 0, done=done,
                  progress=lambda st: tuple(ins(st, t) for t in progress_topics), idle=IDLE, timeout=STAGE_TIMEOUT)
        producer.wait(60)
        c = ceiling_rps()
        fig = {"copies": copies, "records": n, "seconds": round(m["seconds"], 3), "rps": round(n / m["seconds"]),
               "ratio": round(n / m["seconds"] / c, 2) if c else None,
               "events": int(outs(stages, T("events"))), "enriched": int(outs(stages, T("enriched"))),
               "alerts": int(outs(stages, T("alerts"))), "commands": int(outs(stages, T("commands"))),
               "cpu_s_per_m": round(m["cpu_seconds"] / n * 1e6, 1), "rss_mb_max": round(m["hwm_mb"], 1)}
        log("%s: %d raw records through ingest, enrich and detect in %.2f s: %d records/s sustained (%s copies per stage)" % (
            step, n, m["seconds"], fig["rps"], copies))
        # Latency at half that rate.
        rate = max(fig["rps"] // 2, 50)
        lat = paced(prefix, rate, stages, w)
        fig.update(lat)
        log("%s: latency raw produce -> alert at %d records/s: p50 %s ms, p99 %s ms over %d probes (%d missing)" % (
            step, rate, lat["p50_ms"], lat["p99_ms"], lat["probes_received"], lat["probes_missing"]))
        result(step, fig)
    finally:
        stop_all(stages)


def paced(prefix, rate, stages, watch, seconds=20, probes=150):
    """Produces `rate` records/s for `seconds` into PREFIX.raw: the generator's mix with live event
    times, and `probes` StopLogging records spread evenly, whose produce time is noted. A
    consumer of PREFIX.alerts notes when each probe's alert (aws.cloudtrail.logging_disabled,
    naming the probe's eventID in vigil.event_uids) arrives; latency = arrival - produce."""
    from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
    from datetime import datetime, timezone
    pool, _ = load.mixed_records(20000, seed=99)
    pool = [r for r in pool if '"StopLogging"' not in r[2]]       # only probes raise that rule
    g = load.Gen(seed=5)
    produced = {}
    received = {}
    stop = threading.Event()

    def consume():
        c = Consumer({"bootstrap.servers": B, "group.id": "bench-latency", "enable.auto.commit": False,
                      "fetch.wait.max.ms": 10, "enable.partition.eof": False})
        c.assign([TopicPartition(prefix + "alerts", p, OFFSET_BEGINNING) for p in range(P)])
        while not stop.is_set():
            msg = c.poll(0.05)
            if msg is None or msg.error():
                continue
            t = time.time()
            try:
                a = json.loads(msg.value())
            except ValueError:
                continue
            for uid in (a.get("vigil") or {}).get("event_uids") or []:
                if uid in produced and uid not in received:
                    received[uid] = t
        c.close()

    th = threading.Thread(target=consume, daemon=True)
    th.start()
    time.sleep(2)                      # the consumer's metadata and first fetch
    p = Producer({"bootstrap.servers": B, "linger.ms": 5, "acks": "all"})
    ct_time = re.compile(r'"eventTime":"[^"]+"')
    total = int(rate * seconds)
    every = max(total // probes, 1)
    t0 = time.time()
    sent = 0
    i = 0
    while sent < total:
        due = min(int((time.time() - t0) * rate) + 1, total)
        while sent < due:
            now = datetime.now(timezone.utc)
            if sent % every == every // 2:
                uid = "ffffffff-0000-4000-8000-%012d" % sent
                source, key, value = g.stop_logging(now, event_id=uid)
                produced[uid] = time.time()
            else:
                source, key, value = pool[i % len(pool)]
                i += 1
                if source == "cloudtrail":
                    value = ct_time.sub('"eventTime":"%s"' % load.iso(now), value, count=1)
                elif source == "syslog":
                    value = now.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00") + value[32:]
            while True:
                try:
                    p.produce(prefix + "raw", value.encode(), key.encode(), headers=[("vigil-source", source.encode())])
                    break
                except BufferError:
                    p.poll(0.01)
            sent += 1
        p.poll(0)
        watch.check_alive()
        time.sleep(0.005)
    p.flush(30)
    achieved = sent / (time.time() - t0)
    deadline = time.time() + 20
    while len(received) < len(produced) and time.time() < deadline:
        time.sleep(0.1)
    stop.set()
    th.join(5)
    lats = sorted((received[u] - produced[u]) * 1000 for u in received)
    pct = lambda q: round(lats[min(len(lats) - 1, int(q * len(lats)))], 1) if lats else None
    return {"latency_rate": rate, "latency_rate_achieved": round(achieved), "probes": len(produced),
            "probes_received": len(received), "probes_missing": len(produced) - len(received),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(lats[-1], 1) if lats else None}


# --- the peer -------------------------------------------------------------------------------
def bruteforce_rules():
    d = os.path.join(WORK, "rules-bruteforce")
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(ROOT, "rules", "aws", "console_bruteforce.yaml"), d)
    return d


def peer():
    """quixstreams vs vigil-detect over the same enriched events (copied from s.enriched into
    bf.enriched so each has its own output topics)."""
    create_topics("bf.")
    copy_topic("s.enriched", "bf.enriched")
    n = count("bf.enriched")
    log("peer: %d enriched events copied into bf.enriched" % n)
    out = subprocess.run([PY, "-W", "ignore", os.path.join(os.path.dirname(__file__), "peer_quix.py"), B, "bf.enriched",
                          "bf.quix-alerts", str(n), os.path.join(WORK, "quix-state")],
                         stdout=subprocess.PIPE, stderr=open(os.path.join(WORK, "quix.err"), "w"), text=True, timeout=STAGE_TIMEOUT)
    if out.returncode:
        sys.exit("bench: error: the quixstreams peer failed; see %s" % os.path.join(WORK, "quix.err"))
    q = json.loads(out.stdout.strip().splitlines()[-1])
    if q["records"] < n:
        sys.exit("bench: error: quixstreams processed %d of %d records" % (q["records"], n))
    q["rps"] = round(q["records"] / q["seconds"])
    log("peer: quixstreams %s: %d events in %.2f s: %d records/s, %d window results >= 5" % (
        q["version"], q["records"], q["seconds"], q["rps"], q["alerts"]))
    # The consumer settings quixstreams gets (peer_quix.py), so neither side waits longer for
    # its internal topic (partials / the repartition topic) than the other.
    env = {"VIGIL_KAFKA_FETCH_WAIT_MAX_MS": os.environ.get("VIGIL_KAFKA_FETCH_WAIT_MAX_MS", "100")}
    fig, _ = run_detect("bruteforce", "bf.", bruteforce_rules(), n, env=env)
    log("peer: vigil-detect (aws.console.bruteforce only): %(records_in)d events in %(seconds).2f s: %(rps)d records/s, "
        "%(records_out)d alerts" % fig)
    result("peer", {"name": "quixstreams", "version": q["version"], "rps": q["rps"], "records": q["records"],
                    "seconds": q["seconds"], "alerts": q["alerts"], "vigil_detect": fig,
                    "detect_vs_peer": round(fig["rps"] / q["rps"], 2)})


def keys():
    """vigil-detect holding KEYS open window keys: KEYS failed console logins by KEYS different
    users within 4 minutes (aws.console.bruteforce, 5-minute sliding window, group by user)."""
    create_topics("k.")
    tsv = os.path.join(WORK, "keys.tsv")
    with open(tsv, "w") as f:
        for _, _, v in load.open_key_records(KEYS):
            f.write(v + "\n")
    events = os.path.join(WORK, "keys-events.jsonl")
    with open(events, "w") as f:
        subprocess.run([os.path.join(BIN, "vigil"), "normalize", "--source", "cloudtrail", "--lines", tsv],
                       stdout=f, stderr=subprocess.DEVNULL, check=True, timeout=300)
    subprocess.run(["kcat", "-P", "-b", B, "-t", "k.enriched", "-X", "linger.ms=10", "-l", events], check=True, timeout=300)
    n = count("k.enriched")
    if n != KEYS:
        sys.exit("bench: error: k.enriched holds %d events, expected %d" % (n, KEYS))
    # Bounded: the aggregate step's cost per partial grows with the keys it holds (see
    # docs/performance.md), so a run may stop before every partial is in; it then reports the
    # keys it reached.
    fig, stages = run_detect("keys", "k.", bruteforce_rules(), n, timeout=KEYS_TIMEOUT, soft=True)
    fig["partials_aggregated"] = int(ins(stages, "k.detect.partials"))
    log("keys: vigil-detect holding %s open window keys: peak RSS %.0f MB (%d events in %.2f s%s)" % (
        fig.get("open_keys"), fig["rss_mb"], fig["records_in"], fig["seconds"],
        "" if fig.get("complete", True) else "; stopped before the aggregate step took every partial"))
    result("keys", fig)


def report():
    r = {"records": N, "partitions": P}
    if have("ceiling"):
        r.update(result("ceiling"))
    stages = {s: result(s) for s in ("ingest", "enrich", "detect", "respond") if have(s)}
    if stages:
        r["stages"] = stages
    for s in ("pipeline1", "pipeline2"):
        if have(s):
            r["pipeline" if s == "pipeline1" else "pipeline2"] = result(s)
    if have("peer"):
        pr = result("peer")
        r["peer"] = {k: pr[k] for k in ("name", "version", "rps", "records", "seconds", "alerts")}
        r["detect_bruteforce"] = pr["vigil_detect"]
        r["detect_vs_peer"] = pr["detect_vs_peer"]
    if have("keys"):
        k = result("keys")
        r["open_keys"] = {"keys": k.get("open_keys"), "rss_mb": k["rss_mb"], "records": k["records_in"],
                          "partials_aggregated": k.get("partials_aggregated"), "seconds": k["seconds"],
                          "complete": k.get("complete", True)}
    if have("prefill"):
        r["load"] = result("prefill")
    # The targets, judged on this run's figures.
    t = {}
    if "stages" in r and r.get("ceiling_rps"):
        t["stages_ge_0.8x_ceiling"] = all(v.get("ratio") is not None and v["ratio"] >= 0.8 for v in stages.values())
    if "pipeline" in r and r["pipeline"].get("ratio") is not None:
        t["pipeline_ge_0.5x_ceiling"] = r["pipeline"]["ratio"] >= 0.5
    if "detect_vs_peer" in r:
        t["detect_ge_3x_peer"] = r["detect_vs_peer"] >= 3
    if "pipeline" in r and r["pipeline"].get("p99_ms") is not None:
        t["p99_le_500ms"] = r["pipeline"]["p99_ms"] <= 500
    if "open_keys" in r:
        # Judged when the run reached (nearly) the asked number of keys, or when fewer keys
        # already took more than 200 MB; otherwise not judged (null).
        reached = (r["open_keys"]["keys"] or 0) >= 0.9 * KEYS
        within = r["open_keys"]["rss_mb"] <= 200 and all(v["rss_mb"] <= 200 for v in stages.values())
        t["rss_le_200mb_at_keys"] = within if reached or not within else None
    errors = os.path.join(RESULTS, "errors.txt")
    if os.path.exists(errors):
        r["errors"] = [l.strip() for l in open(errors) if l.strip()]
    r["targets_met"] = t
    print(json.dumps(r, separators=(",", ":")))


STEPS = {"prefill": prefill, "ingest": ingest, "enrich": enrich, "detect": detect, "respond": respond,
         "pipeline1": lambda: pipeline(1), "pipeline2": lambda: pipeline(2), "peer": peer, "keys": keys,
         "report": report}

if __name__ == "__main__":
    # SIGTERM (scripts/bench's timeout or trap) unwinds like Ctrl-C, so every `finally` stops
    # the stage processes this step started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if len(sys.argv) != 2 or sys.argv[1] not in STEPS:
        sys.exit("usage: bench.py " + " | ".join(STEPS))
    STEPS[sys.argv[1]]()
