//! Databases for the storage suites: an SQLite file in a temp dir, or a
//! fresh PostgreSQL schema (dropped at the end) at
//! `WARDEN_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`.
#![allow(clippy::unwrap_used, dead_code)]

/// The PostgreSQL the suites use.
pub fn pg_url() -> String {
    std::env::var("WARDEN_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    format!("t_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

/// Drops a test schema and everything in it.
pub async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let q = format!("DROP SCHEMA \"{schema}\" CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(q)).execute(&pool).await.unwrap();
}

/// A temp dir and the URL of an SQLite database inside it.
pub fn sqlite_in_temp_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    (dir, url)
}
