-- wrk script: an authenticated GraphQL `me` query. The token comes from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.body = '{"query":"query Me { me { id email displayName } }","operationName":"Me"}'
