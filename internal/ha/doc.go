// Package ha holds the tests of authd on PostgreSQL's own high-availability
// engines, run by `make test-ha` (test/ha/run.sh): a streaming replica whose
// replay is paused under the revocation feed, and a Patroni pair on etcd
// whose primary is killed under load. Each test starts its own processes on
// 127.0.0.1 under a temporary folder and ends them by pid; none touches the
// shared PostgreSQL.
//
// The tests run only with AUTHD_TEST_HA=1. A missing binary (initdb,
// patroni, etcd) skips them, unless CI is set as well, when it fails them.
package ha
