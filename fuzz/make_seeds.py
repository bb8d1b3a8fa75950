"""Write fuzz seeds from the differential corpus (tests/http_corpus/cases.jsonl)
into fuzz/seeds/ (committed: the seed corpus kept in the repository), or
into the folder given, and from the client's canned responses
(tests/http_client_corpus.py).

fuzz_request seeds: 2 option bytes (0xff: default header limit; 0x00: split
seed, default body limit) + the raw request.  fuzz_chunked seeds: 1 option
byte + the body of the chunked cases.  fuzz_differential seeds: the raw
request.  fuzz_response seeds: 2 option bytes (header limit, body limit /
HEAD / split seed as the case asks) + the response.  ws_frame's seeds are
not made here (fuzz/seeds/ws_frame).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "seeds")
head = b"Transfer-Encoding: chunked\r\n\r\n"
os.makedirs(os.path.join(out, "request"), exist_ok=True)
os.makedirs(os.path.join(out, "chunked"), exist_ok=True)
os.makedirs(os.path.join(out, "differential"), exist_ok=True)
with open(os.path.join(HERE, "..", "tests", "http_corpus", "cases.jsonl")) as f:
    for i, line in enumerate(f):
        case = json.loads(line)
        raw = case["raw"].encode("latin1")
        if "byte 0x" in case["name"] and i % 7:
            continue  # keep a sample of the byte sweeps
        if len(raw) <= 4000:
            with open(os.path.join(out, "request", "%04d" % i), "wb") as g:
                g.write(b"\xff\x00" + raw)
            with open(os.path.join(out, "differential", "%04d" % i), "wb") as g:
                g.write(raw)
        k = raw.find(head)
        if k >= 0:
            with open(os.path.join(out, "chunked", "%04d" % i), "wb") as g:
                g.write(b"\x00" + raw[k + len(head):])

sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from http_client_corpus import cases  # noqa: E402

os.makedirs(os.path.join(out, "response"), exist_ok=True)
for i, case in enumerate(cases()):
    if len(case["data"]) > 4000:
        continue
    b0 = 255
    if case["max_header_size"] is not None:
        b0 = max(0, min(254, (case["max_header_size"] - 16) // 4))
    b1 = (i * 4) & 0xfc
    if case["max_body_size"] is not None and case["max_body_size"] <= 64:
        b1 |= 1
    if case["method"] == "HEAD":
        b1 |= 2
    with open(os.path.join(out, "response", "%04d" % i), "wb") as g:
        g.write(bytes([b0, b1]) + case["data"])
