package postgres

// QueryRowForTest runs q in tx and scans its one row into dest, so tests
// can see the transaction's own state (its settings) from inside it.
func (tx *Tx) QueryRowForTest(q string, dest ...any) error {
	return tx.tx.QueryRow(tx.ctx, q).Scan(dest...)
}

// EvictSQLForTest is the cap check's statement, for its plan.
const EvictSQLForTest = evictSQL
