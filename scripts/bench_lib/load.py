"""Synthetic, realistic raw load for scripts/bench: records, inventory, producers.

Every generator is deterministic (fixed seed), so every run of the bench moves the same bytes.

  load.py gen N OUT.tsv INVENTORY.csv      mixed raw records (see `mixed_records`), one per line:
                                           event-ms<TAB>source<TAB>key<TAB>value
  load.py keys N OUT.tsv                   N failed console logins, each by a different user, all
                                           within 20 s of event time (open window keys)
  load.py produce BROKERS TOPIC FILE.tsv   produce a .tsv with a vigil-source header per record
  load.py paced ...                        paced live load with probes, and the alert latencies
                                           (see `paced`)

Only `produce` and `paced` need confluent_kafka (installed with quixstreams by
`scripts/setup --bench`); the generators need only the standard library.
"""
import json
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

ACCOUNT = "111122223333"
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
         "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter", "deploy-bot",
         "ci-runner", "backup-svc", "terraform"]
REGIONS = ["us-east-1", "us-east-1", "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
AGENTS = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-18-amd64",
    "Boto3/1.34.69 Python/3.11.8 Linux/6.1.0 Botocore/1.34.69",
    "aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/123.0.0.0",
    "Terraform/1.7.5 terraform-provider-aws/5.42.0",
    "console.amazonaws.com",
]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
# Internal hosts: the inventory holds them, flow logs and sshd lines name them.
N_HOSTS = 300
ATTACKERS = ["203.0.113.%d" % i for i in range(100, 140)]
PUBLIC = ["198.51.100.%d" % i for i in range(1, 60)] + ["192.0.2.%d" % i for i in range(1, 60)]


def host_ip(i):
    return "10.0.%d.%d" % (1 + i // 200, 10 + i % 200)


def host_id(i):
    return "i-0a1b2c3d4e%07x" % i


class Gen:
    """One seeded generator; the methods return (source, key, value) triples."""

    def __init__(self, seed=20240501):
        self.rng = rng = random.Random(seed)
        self.keys = {u: "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)) for u in USERS}
        self.principals = {u: "AIDA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(17)) for u in USERS}
        a = ACCOUNT
        # (eventSource, eventName, readOnly, request parameters)
        self.events = [
            ("ec2.amazonaws.com", "DescribeInstances", True, lambda: {"instancesSet": {}, "filterSet": {}}),
            ("ec2.amazonaws.com", "RunInstances", False, lambda: {"instanceType": rng.choice(["t3.micro", "m6i.large", "c7g.xlarge"]), "minCount": 1, "maxCount": 1}),
            ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", False, lambda: {"groupId": "sg-0%07x" % rng.getrandbits(28), "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]}}]}}),
            ("s3.amazonaws.com", "GetObject", True, lambda: {"bucketName": "payments-reports-" + a, "key": "reports/2024/%05d.csv" % rng.randrange(100000)}),
            ("s3.amazonaws.com", "PutObject", False, lambda: {"bucketName": "app-logs-" + a, "key": "logs/%08x.gz" % rng.getrandbits(32)}),
            ("iam.amazonaws.com", "CreateAccessKey", False, lambda: {"userName": rng.choice(USERS)}),
            ("iam.amazonaws.com", "ListUsers", True, lambda: {"maxItems": 100}),
            ("sts.amazonaws.com", "AssumeRole", True, lambda: {"roleArn": "arn:aws:iam::%s:role/deploy" % a, "roleSessionName": "session-%06d" % rng.randrange(10**6)}),
            ("sts.amazonaws.com", "GetCallerIdentity", True, lambda: None),
            ("kms.amazonaws.com", "Decrypt", True, lambda: {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
            ("lambda.amazonaws.com", "Invoke", False, lambda: {"functionName": "ingest-%02d" % rng.randrange(20)}),
        ]
        self.weights = [30, 3, 1, 25, 15, 0.5, 2, 10, 8, 4, 6]

    # --- CloudTrail -----------------------------------------------------------------------
    def _identity(self, user):
        return {"type": "IAMUser", "principalId": self.principals.get(user, "AIDAEXAMPLE" + user[:9].upper()),
                "arn": "arn:aws:iam::%s:user/%s" % (ACCOUNT, user), "accountId": ACCOUNT,
                "accessKeyId": self.keys.get(user, "AKIAEXAMPLEEXAMPLE00"), "userName": user}

    def _uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def cloudtrail(self, t, event=None, user=None, ip=None):
        rng = self.rng
        source, name, read_only, params = event or rng.choices(self.events, self.weights)[0]
        user = user or rng.choice(USERS)
        region = rng.choice(REGIONS)
        event_id = self._uuid()
        r = {
            "eventVersion": "1.09", "userIdentity": self._identity(user),
            "eventTime": iso(t), "eventSource": source, "eventName": name, "awsRegion": region,
            "sourceIPAddress": ip or rng.choice(PUBLIC + [host_ip(rng.randrange(N_HOSTS))]),
            "userAgent": rng.choice(AGENTS), "requestParameters": params(), "responseElements": None,
            "requestID": self._uuid(), "eventID": event_id, "readOnly": read_only, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCOUNT, "eventCategory": "Management",
        }
        if rng.random() < 0.15:      # only some events carry TLS details, as in real trails
            r["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                               "clientProvidedHostHeader": "%s.%s.amazonaws.com" % (source.split(".")[0], region)}
        return ("cloudtrail", event_id, dumps(r))

    def console_login(self, t, user, ok, ip):
        event_id = self._uuid()
        r = {
            "eventVersion": "1.08", "userIdentity": self._identity(user), "eventTime": iso(t),
            "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "awsRegion": "us-east-1",
            "sourceIPAddress": ip, "userAgent": BROWSER, "requestParameters": None,
            "responseElements": {"ConsoleLogin": "Success" if ok else "Failure"},
            "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "No"},
            "eventID": event_id, "readOnly": False, "eventType": "AwsConsoleSignIn", "managementEvent": True,
            "recipientAccountId": ACCOUNT, "eventCategory": "Management",
        }
        if not ok:
            r["errorMessage"] = "Failed authentication"
        return ("cloudtrail", event_id, dumps(r))

    def stop_logging(self, t, user=None, event_id=None):
        user = user or self.rng.choice(USERS)
        event_id = event_id or self._uuid()
        trail = "arn:aws:cloudtrail:us-east-1:%s:trail/org-trail" % ACCOUNT
        r = {
            "eventVersion": "1.09", "userIdentity": self._identity(user), "eventTime": iso(t),
            "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "awsRegion": "us-east-1",
            "sourceIPAddress": self.rng.choice(ATTACKERS), "userAgent": AGENTS[0] + " command/cloudtrail.stop-logging",
            "requestParameters": {"name": trail}, "responseElements": None, "requestID": self._uuid(),
            "eventID": event_id, "readOnly": False,
            "resources": [{"accountId": ACCOUNT, "type": "AWS::CloudTrail::Trail", "ARN": trail}],
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT, "eventCategory": "Management",
        }
        return ("cloudtrail", event_id, dumps(r))

    # --- VPC flow logs (default v2 format, one line per record) ----------------------------
    def flow(self, t, src=None, dst=None, dport=None, action=None):
        rng = self.rng
        i = rng.randrange(N_HOSTS)
        inbound = rng.random() < 0.5
        src = src or (rng.choice(PUBLIC) if inbound else host_ip(i))
        dst = dst or (host_ip(i) if inbound else rng.choice(PUBLIC))
        proto = rng.choices([6, 17, 1], [80, 18, 2])[0]
        dport = dport if dport is not None else (rng.choice([443, 443, 443, 80, 22, 53, 5432]) if proto != 1 else 0)
        sport = rng.randrange(32768, 61000) if proto != 1 else 0
        action = action or ("REJECT" if rng.random() < 0.1 else "ACCEPT")
        packets = rng.randrange(1, 200)
        start = int(t.timestamp()) - 60
        line = "2 %s eni-0a1b2c3d4e%07x %s %s %d %d %d %d %d %d %d %s OK" % (
            ACCOUNT, i, src, dst, sport, dport, proto, packets, packets * rng.randrange(60, 1400),
            start, start + 60, action)
        return ("vpcflow", src, line)

    # --- sshd via rsyslog (RFC 3339 timestamps, so no year guessing) ----------------------
    def sshd(self, t, ip=None, ok=None, user=None):
        rng = self.rng
        i = rng.randrange(N_HOSTS)
        ip = ip or rng.choice(PUBLIC)
        ok = rng.random() < 0.7 if ok is None else ok
        user = user or rng.choice(["ubuntu", "admin", "deploy", "root", "ec2-user"])
        port = rng.randrange(32768, 61000)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + "%06d+00:00" % t.microsecond
        host = "ip-10-0-%d-%d" % (1 + i // 200, 10 + i % 200)
        if ok:
            msg = "Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:%s" % (
                user, ip, port, "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43)))
        else:
            msg = "Failed password for %s from %s port %d ssh2" % (
                user if rng.random() < 0.5 else "invalid user " + user, ip, port)
        return ("syslog", ip, "%s %s sshd[%d]: %s" % (stamp, host, rng.randrange(1000, 65000), msg))


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(o):
    return json.dumps(o, separators=(",", ":"))


def mixed_records(n, seed=20240501, start=datetime(2024, 5, 1, tzinfo=timezone.utc)):
    """N raw records in event-time order: ~80% CloudTrail (one event per record, ~700 bytes),
    ~12% VPC flow lines, ~8% sshd lines, with attacks mixed in: console brute force (6-10
    failed ConsoleLogins by one user within a minute, often followed by a success), StopLogging,
    sshd password guessing (12-15 failures from one address within a minute) and port scans
    (25 rejected flows to distinct ports from one address within a minute). Returns
    (records, attack counts)."""
    g = Gen(seed)
    rng = g.rng
    t = start
    out = []
    attacks = {"console_bruteforce": 0, "stop_logging": 0, "ssh_bruteforce": 0, "port_scan": 0}
    while len(out) < n:
        t += timedelta(milliseconds=rng.randrange(1, 400))
        x = rng.random()
        if x < 0.0006:                            # console brute force: one user, one minute
            attacks["console_bruteforce"] += 1
            user, ip = rng.choice(USERS), rng.choice(ATTACKERS)
            for _ in range(rng.randrange(6, 11)):
                t += timedelta(milliseconds=rng.randrange(1000, 6000))
                out.append(g.console_login(t, user, False, ip))
            if rng.random() < 0.5:
                out.append(g.console_login(t + timedelta(seconds=2), user, True, ip))
        elif x < 0.0011:
            attacks["stop_logging"] += 1
            out.append(g.stop_logging(t))
        elif x < 0.0015:                          # sshd password guessing: one source address
            attacks["ssh_bruteforce"] += 1
            ip = rng.choice(ATTACKERS)
            for _ in range(rng.randrange(12, 16)):
                t += timedelta(milliseconds=rng.randrange(500, 4000))
                out.append(g.sshd(t, ip=ip, ok=False))
        elif x < 0.0018:                          # port scan: rejected flows to 25 ports
            attacks["port_scan"] += 1
            ip = rng.choice(ATTACKERS)
            victim = host_ip(rng.randrange(N_HOSTS))
            for port in rng.sample(range(1, 10000), 25):
                t += timedelta(milliseconds=rng.randrange(50, 2000))
                out.append(g.flow(t, src=ip, dst=victim, dport=port, action="REJECT"))
        elif x < 0.80:
            if rng.random() < 0.03:
                out.append(g.console_login(t, rng.choice(USERS), rng.random() < 0.9, rng.choice(PUBLIC)))
            else:
                out.append(g.cloudtrail(t))
        elif x < 0.92:
            out.append(g.flow(t))
        else:
            out.append(g.sshd(t))
    return out[:n], attacks


def open_key_records(n, seed=7):
    """N failed console logins, each by a different user, within 20 seconds of event time: every
    one opens its own window key in aws.console.bruteforce (5-minute sliding window, 30 s
    lateness), none is late however the partitions interleave, and none closes before the input
    ends."""
    g = Gen(seed)
    start = datetime(2024, 6, 1, tzinfo=timezone.utc)
    span_ms = 20 * 1000
    return [g.console_login(start + timedelta(milliseconds=i * span_ms // n), "user-%06d" % i, False,
                            ATTACKERS[i % len(ATTACKERS)]) for i in range(n)]


def inventory_csv(path):
    """The inventory the enrich stage joins with: the N_HOSTS internal hosts of the load."""
    envs = ["production", "production", "staging", "development"]
    with open(path, "w") as f:
        f.write("id,kind,account,region,name,owner,environment,criticality,internet_exposed,protected,"
                "private_ips,public_ips,network_interfaces,image_id,security_groups,user,tags\n")
        for i in range(N_HOSTS):
            env = envs[i % len(envs)]
            f.write("%s,instance,%s,us-east-1,host-%03d,team-%d,%s,%s,%s,false,%s,,eni-0a1b2c3d4e%07x,ami-0c55b159cbfafe1f0,sg-0web,,env=%s;role=web\n" % (
                host_id(i), ACCOUNT, i, i % 7, env, ["low", "medium", "high", "critical"][i % 4],
                "true" if i % 10 == 0 else "false", host_ip(i), i, env))


def event_millis(source, value):
    """The event time of a generated record, epoch ms: CloudTrail's eventTime, a flow record's
    end, an sshd line's RFC 3339 stamp."""
    if source == "cloudtrail":
        stamp = value[value.index('"eventTime":"') + 13:][:20]
        return int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() * 1000)
    if source == "vpcflow":
        return int(value.split(" ")[11]) * 1000
    return int(datetime.fromisoformat(value.split(" ", 1)[0]).timestamp() * 1000)


def write_tsv(records, path):
    """One record per line: event ms, source, key, value (tab-separated)."""
    total = 0
    with open(path, "w") as f:
        for source, key, value in records:
            total += len(value)
            f.write("%d\t%s\t%s\t%s\n" % (event_millis(source, value), source, key, value))
    return total


def produce(brokers, topic, path):
    """Produces a [event-ms<TAB>]source<TAB>key<TAB>value file with a vigil-source header per
    record; returns the count after every delivery report came back without error.

    With event times, each record's timestamp is its event time moved so the newest is now: the
    topic looks as if a shipper had written every record when it happened, as a backlog left by
    an outage does (the stages' read alignment follows record timestamps)."""
    newest = None
    with open(path) as f:
        for line in f:
            head = line.split("\t", 1)[0]
            if head.isdigit():
                newest = max(newest or 0, int(head))
    shift = int(time.time() * 1000) - newest if newest is not None else None
    from confluent_kafka import Producer
    errors = []

    def report(err, _msg):
        if err is not None:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": brokers, "linger.ms": 10, "batch.num.messages": 10000,
                  "queue.buffering.max.messages": 500000, "queue.buffering.max.kbytes": 1048576,
                  "enable.idempotence": False, "acks": "all"})
    n = 0
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t", 3)
            stamp = None
            if len(fields) == 4 and fields[0].isdigit():
                stamp = int(fields.pop(0)) + shift
            else:
                fields = line.rstrip("\n").split("\t", 2)
            source, key, value = fields
            extra = {"timestamp": stamp} if stamp is not None else {}
            while True:
                try:
                    p.produce(topic, value.encode(), key.encode(), headers=[("vigil-source", source.encode())],
                              on_delivery=report, **extra)
                    break
                except BufferError:
                    p.poll(0.05)
            n += 1
            if n % 10000 == 0:
                p.poll(0)
    left = p.flush(120)
    if left or errors:
        sys.exit("bench: error: producing %s: %d undelivered, %d failed (first: %s)" % (
            topic, left, len(errors), errors[0] if errors else "-"))
    return n


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "gen":
        n, out, inv = int(argv[2]), argv[3], argv[4]
        records, attacks = mixed_records(n)
        total = write_tsv(records, out)
        inventory_csv(inv)
        by = {}
        for s, _, v in records:
            c, b = by.get(s, (0, 0))
            by[s] = (c + 1, b + len(v))
        mix = ", ".join("%s %d (avg %d B)" % (s, c, b / c) for s, (c, b) in sorted(by.items()))
        print(json.dumps({"records": n, "bytes": total, "sources": {s: c for s, (c, _) in by.items()}, "attacks": attacks}))
        print("bench: generated %d raw records, average %d bytes: %s; attacks: %s" % (
            n, total / n, mix, ", ".join("%s %d" % kv for kv in attacks.items())), file=sys.stderr)
    elif cmd == "keys":
        n, out = int(argv[2]), argv[3]
        write_tsv(open_key_records(n), out)
    elif cmd == "produce":
        brokers, topic, path = argv[2], argv[3], argv[4]
        t0 = time.time()
        n = produce(brokers, topic, path)
        print(json.dumps({"records": n, "seconds": round(time.time() - t0, 3)}))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
