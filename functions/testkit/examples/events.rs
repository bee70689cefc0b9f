//! Regenerate `events/` (or write events signed now into another folder).
//!
//! ```sh
//! cargo run -p ferry-testkit --example events                  # events/, signed at the fixed time
//! cargo run -p ferry-testkit --example events -- --now /tmp/ev  # signed now, for invoking by hand
//! ```

use std::path::PathBuf;

use ferry_testkit::events::{generate, write_all};
use ferry_testkit::{SIGNED_AT_MS, events_dir};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (now_ms, dir) = match args.as_slice() {
        [] => (SIGNED_AT_MS, events_dir()),
        [flag, dir] if flag == "--now" => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            (now.as_millis() as i64, PathBuf::from(dir))
        }
        _ => anyhow::bail!("usage: events [--now DIR]"),
    };
    let files = generate(now_ms);
    write_all(&dir, &files)?;
    println!("wrote {} events to {}", files.len(), dir.display());
    Ok(())
}
