// Package pg owns how authms services use PostgreSQL: the per-service database
// and role (provisioning), connection pools, forward-only migrations and the
// transaction helper every command and projector runs in.
//
// # Isolation
//
// Every service owns one database, named by [Naming] ("authms_identity"), and one
// LOGIN role of the same name with its own password. [Provisioner.Ensure] creates
// both with an admin (superuser) connection, makes the role the database owner,
// revokes CONNECT on the database from PUBLIC and grants it to the role only, so a
// service process that holds only its own [Credentials] cannot open any other
// service's database. Service names are one lowercase word ([a-z][a-z0-9]*), which
// keeps "<prefix>_<service>" unambiguous for [Provisioner.DropAll].
//
// # Pools
//
// [Open] builds a pgxpool from [Credentials] and pings it. Behind PgBouncer in
// transaction mode set [PoolConfig].SimpleProtocol: pgx's default cached prepared
// statements fail there.
//
// # Migrations
//
// [Migrate] applies numbered NNNN_name.sql files from one or more
// [MigrationSource]s (first the shared event store, then the service's own), each
// file in its own transaction together with its schema_migrations row.
//
// # Transactions and errors
//
// [InTx] is shaped like pgx.BeginFunc: commit on nil, roll back otherwise.
// [IsUniqueViolation] and [IsUnavailable] classify errors so callers can map them
// to AlreadyExists and Unavailable, and so consumers can tell a database outage
// (transient: back off) from a bad message (permanent).
//
// PostgreSQL 13 or newer is required (DROP DATABASE ... WITH (FORCE)).
package pg
