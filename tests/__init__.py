"""The tests, sorted by what they run on: unit/ (pure, or AWS served by moto in this process), integration/
(real Spark in local mode, the real weights, the local S3 server), e2e/ (the product through the running
local stack); local_stack/ holds the tests of the local stack itself (local/, the stand-ins for AWS)."""
