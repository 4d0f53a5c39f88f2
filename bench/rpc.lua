-- wrk: warm JSON-RPC over HTTP, getHistory level 0.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"getHistory","params":["local","bench/app","v1",0]}'
