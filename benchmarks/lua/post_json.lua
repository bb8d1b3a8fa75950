-- POST / with a small JSON body (benchmarks/apps/post_json.py echoes it)
wrk.method = "POST"
wrk.body = '{"name": "tornado", "n": 42, "ok": true, "tags": ["a", "b"]}'
wrk.headers["Content-Type"] = "application/json"
