//! Scheduled syncs end to end, in-process: the sync domain on the SQLite
//! store against paginated APIs on 127.0.0.1, and the runs it enqueues
//! executed by the real executor against a target that counts deliveries.

mod allow;
mod api;
mod chaos;
mod docs;
mod oauth;
mod one_way;
mod resume;
mod support;
mod two_way;
