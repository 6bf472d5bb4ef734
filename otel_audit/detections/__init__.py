"""Detections as code: Sigma rules over the audit trail (docs/detections.md).

The rule pack lives in ``rules/`` (Sigma YAML). ``pack`` loads it with a team's own rule files,
``pipelines`` maps the rules' fields to each backend, ``convert`` prints deployable Splunk, Loki
and Datadog output, ``evaluate`` runs the rules over a recorded trail in SQLite.

Needs the ``detections`` extra (pySigma and its backends). Nothing in the core package imports
this package: the code injected into apps stays small.
"""
