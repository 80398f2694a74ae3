#!/usr/bin/env python3
"""Fills a fresh fnprof-collector database (schema already made by the
collector) with one instance holding 100k log records and hundreds of
profiles, plus many small instances, for the page's load test.

  bigstore.py DB PROFILE_FILE

Rows go straight into SQLite with the collector's own keying (FNV-1a of the
instance and request id, as store.c's store__key) and its log spans (as
store_span.c makes them), which is far faster than
100k records through PutLogs; what is measured is the page's reading, not
ingest. The profile bytes are a real profile from the demo run; each copy
gets its own time so the sha256 dedupe key differs.
"""
import hashlib
import json
import sqlite3
import sys

LOG_LINES = 100_000
PROFILES = 300
SMALL_INSTANCES = 120
T0 = 1_700_000_000_000_000_000


def key(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h - (1 << 64) if h >= 1 << 63 else h


def main():
    db, profile = sys.argv[1], sys.argv[2]
    data = open(profile, "rb").read()
    c = sqlite3.connect(db, timeout=30)
    cur = c.cursor()
    cur.execute(
        "INSERT INTO batches(dedupe_key, kind, received_ns, project, logstore,"
        " topic, source, tags, n_records) VALUES"
        " ('big', 'sls', ?, 'load', 'function', 'fnprof', 'big', '{}', ?)",
        (T0, LOG_LINES))
    batch = cur.lastrowid
    rows = []
    inst = "big-instance"
    for i in range(LOG_LINES):
        rid = "req-%06d" % (i // 10)
        t = T0 + i * 1_000_000
        if i % 10 == 0:
            f = {"record": "invocation", "type": "invoke",
                 "duration_ns": "800000", "status": "200", "error_type": "",
                 "heap_before_bytes": str(1000 + i), "heap_after_bytes":
                 str(1100 + i), "max_rss_bytes": str(4 << 20)}
        else:
            f = {"record": "log", "stream": "stdout",
                 "message": "line %d of request %s [INFO] working" % (i, rid)}
        f.update(instance=inst, request_id=rid)
        rows.append((batch, t, inst, rid, key(inst), key(rid), json.dumps(f)))
    for n in range(SMALL_INSTANCES):
        name = "small-%03d" % n
        f = {"record": "log", "stream": "stdout", "message": "hello",
             "instance": name}
        rows.append((batch, T0 + n, name, None, key(name), None, json.dumps(f)))
    cur.executemany(
        "INSERT INTO logs(batch_id, time_ns, instance, request_id,"
        " instance_key, request_key, fields) VALUES (?,?,?,?,?,?,?)", rows)
    # What store_span.c writes at commit: one span per (batch, instance).
    cur.execute(
        "INSERT INTO log_spans(batch_id, instance_key, first_log_id,"
        " last_log_id, min_time_ns, max_time_ns, n_rows)"
        " SELECT batch_id, instance_key, min(id), max(id), min(time_ns),"
        " max(time_ns), count(*) FROM logs WHERE batch_id = ?"
        " GROUP BY instance_key", (batch,))
    for p in range(PROFILES):
        t = T0 + p * 300_000_000
        sha = hashlib.sha256(b"%d" % t + data).hexdigest()
        cur.execute(
            "INSERT INTO profiles(sha256, received_ns, time_ns, project,"
            " instance, kind, size, data) VALUES (?,?,?,?,?,?,?,?)",
            (sha, t, t, "default", inst, "heap", len(data), data))
    c.commit()
    c.close()


if __name__ == "__main__":
    main()
