"""One client multiplexing many chat requests over a few HTTP/2 connections (prior
knowledge, cleartext), written with the `h2` package. Every stream is opened at once;
the script then waits for each answer and prints a JSON report on stdout for
tests/e2e/edges.rs: how many answers had each status, and what the refused ones said.

Usage: h2_flood.py HOST PORT CONNECTIONS STREAMS_PER_CONNECTION"""

import json
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events

HOST, PORT, CONNECTIONS, STREAMS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
BODY = json.dumps({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hi"}]}).encode()


def flood(index, results):
    sock = socket.create_connection((HOST, PORT), timeout=120)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    answers = {}
    streams = []
    for n in range(STREAMS):
        stream_id = conn.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":scheme", "http"),
            (":authority", f"{HOST}:{PORT}"),
            ("content-type", "application/json"),
            ("x-user-id", f"flood-{index}-{n}"),
        ]
        conn.send_headers(stream_id, headers)
        conn.send_data(stream_id, BODY, end_stream=True)
        streams.append(stream_id)
        answers[stream_id] = {"status": None, "headers": {}, "body": b"", "reset": None}
    sock.sendall(conn.data_to_send())
    open_streams = set(streams)
    while open_streams:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                headers = {k.decode(): v.decode() for k, v in event.headers}
                answers[event.stream_id]["status"] = headers.get(":status")
                answers[event.stream_id]["headers"] = headers
            elif isinstance(event, h2.events.DataReceived):
                answers[event.stream_id]["body"] += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                open_streams.discard(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                answers[event.stream_id]["reset"] = int(event.error_code)
                open_streams.discard(event.stream_id)
        sock.sendall(conn.data_to_send())
    sock.close()
    results[index] = list(answers.values())


results = [None] * CONNECTIONS
threads = [threading.Thread(target=flood, args=(i, results)) for i in range(CONNECTIONS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

statuses = {}
refusals = []
for answers in results:
    for answer in answers or []:
        key = answer["status"] or f"reset:{answer['reset']}"
        statuses[key] = statuses.get(key, 0) + 1
        if answer["status"] == "503":
            body = json.loads(answer["body"] or b"{}")
            refusals.append({"retry_after": answer["headers"].get("retry-after"), "error": body.get("error")})
report = {"h2_version": h2.__version__, "statuses": statuses, "refusals": refusals[:3], "refused": len(refusals)}
report["refusals_well_formed"] = all(
    r["retry_after"] == "1" and (r["error"] or {}).get("code") == "gateway_overloaded" for r in refusals
)
json.dump(report, sys.stdout)
