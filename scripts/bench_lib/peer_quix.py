"""The peer for scripts/bench: quixstreams doing the detect stage's brute-force count.

  peer_quix.py BROKERS INPUT OUTPUT N STATE_DIR

Reads the enriched OCSF events of INPUT (JSON), keeps failed console logins (class_uid 3002,
api.operation ConsoleLogin, status_id 2), regroups them by user name (actor.user.name; a
repartition topic, as vigil-detect's partials topic), counts them in 60 s tumbling windows of
event time (the event's `time`; 30 s grace, as the vigil rule's lateness), emits final results
only, and writes those with a count >= 5 to OUTPUT. Stops when no message arrived for 3 s.
Prints one JSON line: records (inputs seen), seconds (first input to last record processed,
regrouped ones included), alerts, version.
"""
import json
import sys
import time
import uuid

import quixstreams
from quixstreams import Application

brokers, source, sink, n, state = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
seen = {"n": 0, "first": None, "last": None, "alerts": 0}


def track(value):
    t = time.monotonic()
    if seen["first"] is None:
        seen["first"] = t
    seen["last"] = t
    seen["n"] += 1


def track_regrouped(value):
    seen["last"] = time.monotonic()


def failed_console_login(v):
    return v.get("class_uid") == 3002 and v.get("status_id") == 2 and (v.get("api") or {}).get("operation") == "ConsoleLogin"


def user(v):
    return ((v.get("actor") or {}).get("user") or {}).get("name") or ""


def alert(v):
    seen["alerts"] += 1


app = Application(
    broker_address=brokers,
    consumer_group="bench-quix-" + uuid.uuid4().hex[:8],
    auto_offset_reset="earliest",
    state_dir=state,
    loglevel="WARNING",
    # Same as vigil-detect in the bench's peer step: faster group joins on tansu (6 s session
    # timeout) and at most 100 ms of waiting in a fetch of a topic that has nothing new.
    consumer_extra_config={"session.timeout.ms": 6000, "fetch.wait.max.ms": 100},
)
inp = app.topic(source, value_deserializer="json",
                timestamp_extractor=lambda value, headers, ts, ttype: int(value.get("time", ts)))
out = app.topic(sink, value_serializer="json")
sdf = app.dataframe(inp)
sdf = sdf.update(track)
sdf = sdf.filter(failed_console_login)
sdf = sdf.group_by(user, name="user")
sdf = sdf.update(track_regrouped)          # the work ends with the last regrouped record
sdf = sdf.tumbling_window(duration_ms=60_000, grace_ms=30_000).count().final()   # grace = the rule's lateness
sdf = sdf.filter(lambda w: w["value"] >= 5)
sdf = sdf.update(alert)
sdf = sdf.to_topic(out)
app.run(timeout=3, collect=False)
seconds = (seen["last"] - seen["first"]) if seen["first"] is not None else 0.0
print(json.dumps({"records": seen["n"], "seconds": round(max(seconds, 1e-3), 3), "alerts": seen["alerts"],
                  "version": quixstreams.__version__}))
