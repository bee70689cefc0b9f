//! Opening the embedded store: a directory or a file, WAL with full sync,
//! the current schema, and a newer schema refused.

use std::sync::Arc;

use super::tests::open;
use super::{SqliteOptions, SqliteStore};
use crate::clock::SystemClock;
use crate::ports::StoreError;

#[test]
fn open_takes_a_directory_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (dir.path().to_path_buf(), dir.path().join("ferry.db")),
        (
            dir.path().join(".ferry"),
            dir.path().join(".ferry/ferry.db"),
        ),
        (
            dir.path().join("x/hub.sqlite"),
            dir.path().join("x/hub.sqlite"),
        ),
    ];
    for (given, expected) in cases {
        let store = open(&given, Arc::new(SystemClock));
        assert_eq!(store.path(), expected);
        assert!(expected.is_file(), "{expected:?}");
    }
    // An existing file without an extension is used as is.
    let bare = dir.path().join("bare");
    drop(open(&dir.path().join("bare.db"), Arc::new(SystemClock)));
    std::fs::rename(dir.path().join("bare.db"), &bare).unwrap();
    assert_eq!(open(&bare, Arc::new(SystemClock)).path(), bare);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.db");
    drop(open(&file, Arc::new(SystemClock)));
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&file, SqliteOptions::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt(ref m) if m.contains("99")),
        "{err:?}"
    );
}

#[test]
fn opens_wal_with_full_sync_and_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/ferry.sqlite");
    let store = open(&nested, Arc::new(SystemClock));
    assert_eq!(store.path(), nested);
    drop(store);
    let conn = rusqlite::Connection::open(&nested).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(version, super::schema::SCHEMA_VERSION);
}
