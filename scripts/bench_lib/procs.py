"""Stage processes for scripts/bench: start them, watch their /metrics and /proc, stop them.

A stage executable runs until SIGTERM (only `vigil passthrough` has --exit-when-idle), so the
bench watches each copy's Prometheus counters (vigil_records_in_total, vigil_records_out_total)
every SAMPLE seconds, decides that the work is done when the expected inputs were consumed and no
counter moved for IDLE seconds, and measures the active interval from the first sample that saw
an input to the first sample that saw the final counts. CPU time comes from /proc/PID/stat
(utime + stime), peak RSS from /proc/PID/status (VmHWM), both sampled the same way.
"""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

SAMPLE = 0.1
TICK = os.sysconf("SC_CLK_TCK")
METRIC = re.compile(r'^(\w+)(?:\{([^}]*)\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="([^"]*)"')


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def log(msg):
    print("bench: " + msg, flush=True)


class Stage:
    """One stage process (one copy)."""

    def __init__(self, name, argv, work, inputs, env=None, cwd=None):
        self.name = name
        self.inputs = inputs           # topics its consumer groups read
        self.port = free_port()
        self.argv = argv + ["--metrics-port", str(self.port)]
        self.out = os.path.join(work, "%s.out" % name)
        self.err = os.path.join(work, "%s.err" % name)
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault("VIGIL_KAFKA_SESSION_TIMEOUT_MS", "6000")
        self.proc = subprocess.Popen(self.argv, stdout=open(self.out, "w"), stderr=open(self.err, "w"),
                                     env=full_env, cwd=cwd, start_new_session=True)
        pidfile = os.environ.get("BENCH_PIDFILE")
        if pidfile:                    # the shell's trap stops whatever is listed here
            with open(pidfile, "a") as f:
                f.write("%d\n" % self.proc.pid)
        self.counters = {}
        self.up = False                # its /metrics endpoint answered
        self.cpu = 0.0
        self.hwm_kb = 0
        self.rss_kb = 0

    def alive(self):
        return self.proc.poll() is None

    def sample(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=2) as r:
                text = r.read().decode()
            counters = {}
            for line in text.splitlines():
                m = METRIC.match(line)
                if m:
                    counters[(m.group(1), tuple(sorted(LABEL.findall(m.group(2) or ""))))] = float(m.group(3))
            self.counters = counters
            self.up = True
        except OSError:
            pass                       # not listening yet, or busy: keep the last reading
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            self.cpu = (int(fields[11]) + int(fields[12])) / TICK
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.hwm_kb = int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        self.rss_kb = int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass

    def metric(self, name, **labels):
        """Sum of a metric over the series whose labels include `labels`."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.counters.items() if n == name and want <= set(ls))

    def assigned(self):
        """Latest assignment per input topic from the JSON log lines: topic -> set of partitions."""
        out = {}
        try:
            with open(self.err) as f:
                for line in f:
                    if "partitions" not in line:
                        continue
                    try:
                        o = json.loads(line)
                    except ValueError:
                        continue
                    msg = o.get("msg")
                    if msg not in ("partitions assigned", "partitions revoked"):
                        continue
                    for item in filter(None, o.get("partitions", "").split(",")):
                        m = re.match(r"(.*)\[(\d+)\]$", item)
                        if not m:
                            continue
                        parts = out.setdefault(m.group(1), set())
                        (parts.add if msg == "partitions assigned" else parts.discard)(int(m.group(2)))
        except OSError:
            pass
        return out

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def tail(self, n=15):
        try:
            with open(self.err) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Watch:
    """Samples a set of stages until `done(stages)` holds and `progress(stages)` (a tuple of
    counters) has not moved for `idle` seconds. Records the times and CPU of the first sample
    where `started(stages)` holds and of the first sample showing the final progress."""

    def __init__(self, stages, what):
        self.stages = stages
        self.what = what

    def sample(self):
        for s in self.stages:
            s.sample()

    def wait_assigned(self, topics, partitions, timeout):
        """Waits until every copy holds a share of each of `topics` and their shares cover all
        `partitions` (so no rebalance lands inside the measurement)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.check_alive()
            ok = True
            for topic in topics:
                holders = [s for s in self.stages if topic in s.assigned()]
                union = set()
                for s in holders:
                    union |= s.assigned()[topic]
                if union != set(range(partitions)):
                    ok = False
                need = sum(1 for s in self.stages if topic in s.inputs)
                if sum(1 for s in holders if s.assigned()[topic]) < min(need, partitions):
                    ok = False
            if ok:
                return
            time.sleep(0.2)
        raise SystemExit("bench: error: %s: consumer groups not assigned within %d s:\n%s" % (
            self.what, timeout, "\n".join("%s: %s" % (s.name, s.assigned()) for s in self.stages)))

    def check_alive(self):
        for s in self.stages:
            if not s.alive():
                raise SystemExit("bench: error: %s exited with %s during %s; its log ends:\n%s" % (
                    s.name, s.proc.returncode, self.what, s.tail()))

    def run(self, started, done, progress, idle, timeout, soft=False):
        """Returns the interval figures; `complete` is False when `soft` and the timeout hit
        first (the figures then cover the work done so far)."""
        deadline = time.time() + timeout
        first = None          # (time, cpu) of the first sample where started() holds
        last_change = None    # (time, cpu) of the first sample showing the current progress
        prev_t = None
        value = None
        complete = True
        while True:
            now = time.time()
            self.sample()
            cpu = sum(s.cpu for s in self.stages)
            if first is None and started(self.stages):
                # The work began between the previous sample and this one: take the midpoint.
                first = ((now + prev_t) / 2 if prev_t else now, cpu)
            p = progress(self.stages)
            if p != value:
                value = p
                last_change = ((now + prev_t) / 2 if prev_t else now, cpu)
            prev_t = now
            if first and done(self.stages) and now - last_change[0] >= idle:
                break
            if now > deadline and soft and first:
                log("%s: stopped after %d s, not finished (progress %s)" % (self.what, timeout, p))
                last_change = (now, cpu)
                complete = False
                break
            if now > deadline:
                raise SystemExit("bench: error: %s did not finish within %d s (progress %s); logs: %s" % (
                    self.what, timeout, p, ", ".join(s.err for s in self.stages)))
            self.check_alive()
            time.sleep(SAMPLE)
        return {
            "seconds": max(last_change[0] - first[0], 1e-3),
            "cpu_seconds": max(last_change[1] - first[1], 0.0),
            "cpu_total_seconds": sum(s.cpu for s in self.stages),
            "hwm_mb": max(s.hwm_kb for s in self.stages) / 1024,
            "complete": complete,
        }


def stop_all(stages):
    for s in stages:
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
    for s in stages:
        s.stop()
