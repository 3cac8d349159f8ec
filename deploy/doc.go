// Package deploy holds cutover's deployment files and the tests that keep
// them true: Prometheus recording and alerting rules (unit-tested with
// promtool), a Grafana dashboard whose every query names a series the
// proxy exports or a rule records, a systemd unit for one replica and a
// Kubernetes manifest for a fleet, whose command lines and config keys are
// checked against the real CLI and config schema. It has no code of its
// own.
package deploy
