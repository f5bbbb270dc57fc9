"""HTTP API: POST /runs, GET /runs/{run_id}, DELETE /runs/{run_id}."""
