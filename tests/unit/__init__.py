"""Pure tests, or AWS served by moto in this process: no Spark, no running stack."""
