"""Reconcile: every open run checked against EMR, so that no lost event leaves a run unreported."""
