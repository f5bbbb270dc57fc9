"""The control plane (lambda/ and template.yaml) against AWS services served by moto in this process."""
