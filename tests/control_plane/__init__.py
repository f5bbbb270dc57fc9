"""Tests of the control plane (lambda/ and template.yaml) against AWS services served locally by moto."""
